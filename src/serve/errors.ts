// A request the server refuses: the status and a one-line message that says what to do instead.

export class HttpError extends Error {
  constructor(readonly status: 400 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}
