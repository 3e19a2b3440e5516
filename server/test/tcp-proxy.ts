/**
 * A TCP proxy for tests, on 127.0.0.1: each connection goes to the first of `targets` that
 * accepts it (a load balancer failing over to a live instance), and the proxy can stop passing
 * bytes, holding them in both directions without a reset or an error, as a route that drops
 * packets would, and start again; or cut off the connections open, for good, without a word.
 *
 *   const proxy = new TcpProxy([{ host: '127.0.0.1', port: 5432 }]);
 *   const port = await proxy.listen();
 *   proxy.freeze(); ... proxy.thaw();
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Target {
  host: string;
  port: number;
}

export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #held: Array<() => void> = [];
  /** Connections cut off by `cut`: nothing passes on them again, not even their end. */
  readonly #cut = new WeakSet<Socket>();
  #frozen = false;
  /** Connections accepted so far. */
  accepted = 0;

  #targets: readonly Target[];

  constructor(targets: readonly Target[]) {
    this.#targets = targets;
    // (Half-open allowed: a client's end is passed on, not answered by the proxy itself, so a
    // frozen or cut connection stays as a host that went silent leaves it.)
    this.#server = createServer({ allowHalfOpen: true }, (client) => this.#accept(client));
  }

  /** Connections made from now on go to these (a server started again on another port). */
  retarget(targets: readonly Target[]): void {
    this.#targets = targets;
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  #accept(client: Socket): void {
    this.accepted++;
    this.#track(client);
    // What the client sends before an upstream accepted it waits here.
    const early: Buffer[] = [];
    const hold = (chunk: Buffer) => early.push(chunk);
    client.on('data', hold);
    const targets = this.#targets;
    const tryTarget = (i: number) => {
      if (i >= targets.length || client.destroyed) return client.destroy();
      const upstream = connect(targets[i]!.port, targets[i]!.host);
      upstream.once('error', () => tryTarget(i + 1));
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        this.#track(upstream);
        if (client.destroyed) return upstream.destroy(); // the client gave up meanwhile
        upstream.on('close', () => !this.#cut.has(upstream) && this.#pass(() => client.destroy()));
        client.on('close', () => !this.#cut.has(client) && this.#pass(() => upstream.destroy()));
        client.off('data', hold);
        for (const chunk of early) this.#pass(() => upstream.write(chunk));
        this.#relay(client, upstream);
        this.#relay(upstream, client);
      });
    };
    tryTarget(0);
  }

  /** Does `send` now, or after the thaw, behind what is held. */
  #pass(send: () => void): void {
    if (this.#frozen) this.#held.push(send);
    else send();
  }

  #relay(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => !this.#cut.has(from) && this.#pass(() => to.write(chunk)));
    from.on('end', () => !this.#cut.has(from) && this.#pass(() => to.end()));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve((this.#server.address() as { port: number }).port)));
  }

  freeze(): void {
    this.#frozen = true;
  }

  /**
   * Every connection open now stops passing bytes for good, in both directions, and neither
   * side hears of the other's end: a peer gone without a word (a host lost, a partition).
   * Connections made from now on pass as before.
   */
  cut(): void {
    for (const socket of this.#sockets) this.#cut.add(socket);
  }

  /** Ends every connection open now at once (a reset); connections made from now on pass. */
  reset(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  thaw(): void {
    this.#frozen = false;
    for (const send of this.#held.splice(0)) send();
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.#server.close(r));
  }
}
