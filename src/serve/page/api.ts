// Talking to arpix serve: JSON requests whose errors carry the server's one-line message, and
// Server-Sent Events read from a POST's streamed body (EventSource can only GET).

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function parse(res: Response): Promise<unknown> {
  const body = (await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

export async function getJson<T>(url: string): Promise<T> {
  return (await parse(await fetch(url))) as T;
}

export async function postJson<T>(url: string, body: unknown): Promise<T> {
  return (await parse(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }))) as T;
}

export async function postBytes<T>(url: string, body: Blob): Promise<T> {
  return (await parse(await fetch(url, { method: 'POST', headers: { 'content-type': body.type || 'application/octet-stream' }, body }))) as T;
}

/** Sends `body` and returns the file the server answers with, and its headers (a JSON error is thrown as ApiError). */
export async function postForFile(url: string, body: unknown, signal?: AbortSignal): Promise<{ blob: Blob; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (!res.ok) await parse(res);
  return { blob: await res.blob(), headers: res.headers };
}

/** Sends `body` and calls onEvent for every event of the streamed answer; resolves when it ends. */
export async function streamEvents(url: string, body: unknown, onEvent: (event: string, data: unknown) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (!res.ok || !res.body) await parse(res);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(event, JSON.parse(data.join('\n')));
    }
  }
}
