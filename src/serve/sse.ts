// Server-Sent Events as a plain ReadableStream: the producer gets `send` and a signal that aborts
// when the client goes away (the stream is cancelled, or the request's own signal aborts), which
// is how a closed tab cancels its sampling job.

export type Send = (event: string, data: unknown) => void;

const encoder = new TextEncoder();

export function sseResponse(request: Request, produce: (send: Send, signal: AbortSignal) => Promise<void>, opts: { heartbeatMs?: number } = {}): Response {
  const controller = new AbortController();
  let closed = false;
  let heartbeat: ReturnType<typeof setInterval> | null = null;
  const stop = () => {
    if (heartbeat !== null) clearInterval(heartbeat);
    heartbeat = null;
    if (!controller.signal.aborted) controller.abort();
  };
  request.signal.addEventListener('abort', stop, { once: true });
  const body = new ReadableStream<Uint8Array>({
    start(sink) {
      const send: Send = (event, data) => {
        if (closed || controller.signal.aborted) return;
        sink.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      };
      if (opts.heartbeatMs) heartbeat = setInterval(() => { if (!closed) sink.enqueue(encoder.encode(': keep-alive\n\n')); }, opts.heartbeatMs);
      produce(send, controller.signal).catch((e: unknown) => {
        send('error', { status: (e as { status?: number }).status ?? 500, message: e instanceof Error ? e.message : String(e) });
      }).finally(() => {
        if (heartbeat !== null) clearInterval(heartbeat);
        if (closed) return;
        closed = true;
        try {
          sink.close();
        } catch {
          // already cancelled by the client
        }
      });
    },
    cancel() {
      closed = true;
      stop();
    },
  });
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
  });
}
