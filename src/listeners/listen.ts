import type { AddressInfo, Server } from 'node:net';

/** Listen on host:port (port 0: any free port) and resolve with the bound address, or reject on error. */
export function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
