// A request the server refuses: the status and a one-line message that says what to do instead.

export class HttpError extends Error {
  constructor(readonly status: 400 | 403 | 404 | 408 | 409 | 413 | 415 | 422 | 429 | 500 | 503, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The 422 for an image the decoder refused, from its reason ("is a truncated PNG (…)"). */
export function undecodable(e: unknown): HttpError {
  const reason = e instanceof Error ? e.message : String(e);
  return new HttpError(422, `the image cannot be decoded: ${/^(is|declares) /.test(reason) ? `it ${reason}` : reason}`);
}
