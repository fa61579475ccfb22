// The language kernels are declared in (src/kernels/contracts.ts): each kernel is a list of named
// arguments of a few kinds, and everything else is derived from that list — the `Kernels`
// interface's parameter types (below), the native adapter's marshalling
// (src/backends/native/kernels.ts) and the addon's argument checks (native/binding.cc, which reads
// the same table at load and refuses a C++ function whose parameters disagree with it).
//
// A tensor argument says which dtypes it takes and, where the kernel needs it, how its element
// count relates to another argument's. Those rules are what keeps a native kernel inside its
// buffers, so the addon checks them on every call; the op layer has checked the same facts with
// friendlier messages before.

/** Dtypes a kernel argument can declare. float64 is not one: it always runs on the ts backend. */
export type KernelDType = 'float32' | 'int32';

/** The dtypes a tensor argument takes, or `like <arg>`: whatever dtype that tensor argument has. */
export type DTypeRule = readonly KernelDType[] | `like ${string}`;

/**
 * How a tensor's element count follows from another tensor argument `x`:
 * - `x`: as many elements as x;
 * - `rows of x`: one per row of x (x's count over its last axis; 1 for a scalar);
 * - `last of x`: x's last axis (1 for a scalar);
 * - `twice x`: twice x's count.
 */
export type SizeRule = string;

export interface TensorArg {
  readonly kind: 'tensor';
  readonly name: string;
  readonly dtype: DTypeRule;
  readonly size?: SizeRule;
  /** The name of the tensor this one broadcasts to (NumPy rules, right-aligned). */
  readonly broadcast?: string;
  /** May be null (not wanted, or absent). */
  readonly nullable?: boolean;
  /** May be left out (trailing arguments only); the adapter passes false / null. */
  readonly optional?: boolean;
  /** The storage identity and version travel with it: native caches what it derives from the tensor (reordered weights). */
  readonly identity?: boolean;
}

/** A string attribute from a fixed list (an op's name). */
export interface ChoiceArg {
  readonly kind: 'choice';
  readonly name: string;
  readonly values: readonly string[];
}

/** A list of tensors (concat's inputs) or of convolution terms (rowConvSumBackward's), all of one dtype rule. */
export interface ListArg {
  readonly kind: 'tensors' | 'convTerms';
  readonly name: string;
  readonly dtype: DTypeRule;
}

/**
 * A plain attribute: a number, an integer, a non-negative integer (uint), a boolean, a list of
 * integers, or one of the contract's attribute structs.
 */
export interface AttributeArg {
  readonly kind: 'number' | 'int' | 'uint' | 'bool' | 'ints' | 'convParams' | 'attentionAttrs' | 'adamHyper' | 'rowLstmPlan';
  readonly name: string;
  readonly optional?: boolean;
}

export type KernelArg = TensorArg | ChoiceArg | ListArg | AttributeArg;
export type ArgKind = KernelArg['kind'];

export interface KernelDescriptor {
  readonly args: readonly KernelArg[];
  /** What the kernel returns: nothing, or an integer (conv2d's handle to the input copy it kept). */
  readonly returns?: 'int';
}

// ---- building a descriptor ----
// `const` type parameters keep names and choices as literal types, which the signature needs.

type TensorOptions = Pick<TensorArg, 'size' | 'broadcast' | 'nullable' | 'optional' | 'identity'>;

export const F32 = ['float32'] as const;
export const I32 = ['int32'] as const;
/** float32 or int32 (float64 on the ts backend). */
export const NUMERIC = ['float32', 'int32'] as const;

export function tensor<const N extends string, const O extends TensorOptions = object>(name: N, dtype: DTypeRule, options?: O): { readonly kind: 'tensor'; readonly name: N; readonly dtype: DTypeRule } & O {
  return { kind: 'tensor', name, dtype, ...options } as { readonly kind: 'tensor'; readonly name: N; readonly dtype: DTypeRule } & O;
}

export function choice<const N extends string, const V extends readonly string[]>(name: N, values: V): { readonly kind: 'choice'; readonly name: N; readonly values: V } {
  return { kind: 'choice', name, values };
}

export function list<const K extends ListArg['kind'], const N extends string>(kind: K, name: N, dtype: DTypeRule): { readonly kind: K; readonly name: N; readonly dtype: DTypeRule } {
  return { kind, name, dtype };
}

export function attr<const K extends AttributeArg['kind'], const N extends string, const O extends { readonly optional?: boolean } = object>(kind: K, name: N, options?: O): { readonly kind: K; readonly name: N } & O {
  return { kind, name, ...options } as { readonly kind: K; readonly name: N } & O;
}

export function kernel<const A extends readonly KernelArg[]>(...args: A): { readonly args: A } {
  return { args };
}

export function kernelReturning<const A extends readonly KernelArg[]>(returns: 'int', ...args: A): { readonly args: A; readonly returns: 'int' } {
  return { args, returns };
}

// ---- the signature a descriptor stands for ----

/** The TypeScript value of each argument kind (contracts.ts gives the struct types). */
export interface ArgValueTypes {
  tensor: unknown;
  tensors: unknown;
  convTerms: unknown;
  number: number;
  int: number;
  uint: number;
  bool: boolean;
  ints: readonly number[];
  convParams: unknown;
  attentionAttrs: unknown;
  adamHyper: unknown;
  rowLstmPlan: unknown;
}

type ArgValue<A, T extends ArgValueTypes> = A extends { readonly kind: 'choice'; readonly values: readonly (infer V)[] }
  ? V
  : A extends { readonly kind: infer K extends keyof ArgValueTypes }
    ? A extends { readonly nullable: true } ? T[K] | null : T[K]
    : never;

/** The parameter list of a descriptor's arguments: optional ones optional, nullable ones `| null`. */
export type ParamsOf<A extends readonly unknown[], T extends ArgValueTypes> = A extends readonly [infer H, ...infer R]
  ? H extends { readonly optional: true } ? [ArgValue<H, T>?, ...ParamsOf<R, T>] : [ArgValue<H, T>, ...ParamsOf<R, T>]
  : [];

/** The function type a descriptor declares. */
export type SignatureOf<D, T extends ArgValueTypes> = D extends { readonly args: infer A extends readonly unknown[] }
  ? (...args: ParamsOf<A, T>) => D extends { readonly returns: 'int' } ? number : void
  : never;

// ---- consistency of a table (the addon checks the same at load; a test runs this one) ----

/** What is wrong with a table of descriptors: names that do not resolve, optional arguments in the middle. */
export function descriptorProblems(table: Readonly<Record<string, KernelDescriptor>>): string[] {
  const problems: string[] = [];
  for (const [kernelName, d] of Object.entries(table)) {
    const tensors = new Set(d.args.filter((a) => a.kind === 'tensor').map((a) => a.name));
    const names = new Set<string>();
    let optionalSeen = false;
    for (const a of d.args) {
      const at = `${kernelName}: ${a.name}`;
      if (names.has(a.name)) problems.push(`${at} is declared twice`);
      names.add(a.name);
      const optional = 'optional' in a && a.optional === true;
      if (optionalSeen && !optional) problems.push(`${at} follows an optional argument but is not optional`);
      optionalSeen ||= optional;
      const refs: string[] = [];
      if ('dtype' in a && typeof a.dtype === 'string') refs.push(a.dtype.slice('like '.length));
      if (a.kind === 'tensor' && a.size !== undefined) refs.push(a.size.replace(/^(rows of|last of|twice) /, ''));
      if (a.kind === 'tensor' && a.broadcast !== undefined) refs.push(a.broadcast);
      for (const r of refs) if (!tensors.has(r) || r === a.name) problems.push(`${at} refers to '${r}', which is not another tensor argument`);
    }
  }
  return problems;
}
