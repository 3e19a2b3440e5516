/**
 * A free TCP port, for a child process that must be told its port up front (a server that can
 * listen on port 0 itself should). The port is released before it is returned, so another
 * process may in principle take it first.
 *
 *   const port = await freePort(); // e.g. 40123
 */
import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
