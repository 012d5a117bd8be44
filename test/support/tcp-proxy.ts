import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that a test controls: delay every chunk, drop every connection, or
 * leave connections half-open (accepted, never answered).
 */
export interface TcpProxy {
  readonly port: number;
  /** Delays every chunk in both directions by `ms`. */
  delay(ms: number): void;
  /** Destroys every open connection at once (the client sees a reset). */
  dropAll(): void;
  /** While on, bytes are swallowed: connections stay open but nothing comes back. */
  blackhole(on: boolean): void;
  /**
   * The next bytes the server sends are dropped, and every connection with them: the server did
   * the work (an autocommit statement committed), the client sees its connection reset.
   */
  loseNextAnswer(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let delayMs = 0;
  let swallow = false;
  let loseAnswer = false;
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket, answers: boolean) => {
    from.on('data', (chunk) => {
      if (swallow) return;
      if (answers && loseAnswer) {
        loseAnswer = false;
        sockets.forEach((s) => s.destroy());
        return;
      }
      if (delayMs) setTimeout(() => to.destroyed || to.write(chunk), delayMs);
      else to.write(chunk);
    });
    from.on('error', () => to.destroy());
    from.on('close', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    forward(client, upstream, false);
    forward(upstream, client, true);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    delay: (ms) => void (delayMs = ms),
    dropAll: () => sockets.forEach((s) => s.destroy()),
    blackhole: (on) => void (swallow = on),
    loseNextAnswer: () => void (loseAnswer = true),
    close: () =>
      new Promise((resolve) => {
        sockets.forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  };
}
