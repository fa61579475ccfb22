// A grey (one-component) baseline JPEG writer for tests: jpeg-js only writes YCbCr. Each 8×8
// block is stored as its mean (the DC coefficient only, every AC coefficient zero), with a
// quantisation table of ones, so decoding gives exactly the block means back — enough to test
// that a grey JPEG is read as grey, and a real file for the fuzzer to damage.

/** Canonical Huffman codes from the 16 code-length counts (JPEG Annex C). */
function huffmanCodes(counts: readonly number[], symbols: readonly number[]): Map<number, { code: number; len: number }> {
  const out = new Map<number, { code: number; len: number }>();
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < counts[len - 1]!; i++) out.set(symbols[k++]!, { code: code++, len });
    code <<= 1;
  }
  return out;
}

// The standard luminance DC table (Annex K.3); an AC table holding only end-of-block.
const DC_COUNTS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_SYMBOLS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_COUNTS = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const AC_SYMBOLS = [0x00];

/** A grey JPEG of `width`×`height` (multiples of 8) whose blocks hold the means of `data`'s. */
export function encodeGreyJpeg(data: Uint8Array, width: number, height: number): Uint8Array {
  if (width % 8 !== 0 || height % 8 !== 0) throw new Error('encodeGreyJpeg: width and height must be multiples of 8');
  const dc = huffmanCodes(DC_COUNTS, DC_SYMBOLS);
  const eob = huffmanCodes(AC_COUNTS, AC_SYMBOLS).get(0)!;
  const scan: number[] = [];
  let acc = 0;
  let nbits = 0;
  const put = (code: number, len: number) => {
    for (let b = len - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >> b) & 1);
      if (++nbits === 8) {
        scan.push(acc);
        if (acc === 0xff) scan.push(0x00); // byte stuffing
        acc = 0;
        nbits = 0;
      }
    }
  };
  let prev = 0;
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      let sum = 0;
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) sum += data[(by + y) * width + bx + x]!;
      const coeff = 8 * (Math.round(sum / 64) - 128); // F(0,0) of a flat block, quantised by 1
      const diff = coeff - prev;
      prev = coeff;
      const size = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
      const h = dc.get(size)!;
      put(h.code, h.len);
      if (size > 0) put(diff >= 0 ? diff : (diff - 1) & ((1 << size) - 1), size);
      put(eob.code, eob.len);
    }
  }
  if (nbits > 0) put((1 << (8 - nbits)) - 1, 8 - nbits); // pad with ones
  const seg = (marker: number, body: number[]) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
  const bytes = [
    0xff, 0xd8,
    ...seg(0xdb, [0x00, ...new Array<number>(64).fill(1)]),
    ...seg(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]),
    ...seg(0xc4, [0x00, ...DC_COUNTS, ...DC_SYMBOLS]),
    ...seg(0xc4, [0x10, ...AC_COUNTS, ...AC_SYMBOLS]),
    ...seg(0xda, [1, 1, 0x00, 0, 63, 0]),
    ...scan,
    0xff, 0xd9,
  ];
  return Uint8Array.from(bytes);
}
