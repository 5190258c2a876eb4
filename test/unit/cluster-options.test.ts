/** `npm run cluster`'s options: bad ones (and a busy port) stop it before anything starts, with CONFIG_INVALID. */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { checkClusterOptions, MAX_REPLICAS, startCluster } from '../../src/cluster/cluster.js';

const good = { replicas: 3, httpPort: 8080, grpcPort: 8081, statsPort: 8404 };

describe('cluster options', () => {
  it('accepts the defaults, one replica, the most replicas and free ports (0) for all three', () => {
    expect(() => checkClusterOptions(good)).not.toThrow();
    expect(() => checkClusterOptions({ ...good, replicas: 1 })).not.toThrow();
    expect(() => checkClusterOptions({ ...good, replicas: MAX_REPLICAS })).not.toThrow();
    expect(() => checkClusterOptions({ replicas: 2, httpPort: 0, grpcPort: 0, statsPort: 0 })).not.toThrow();
  });
  it.each([
    [{ replicas: 0 }, /--replicas must be an integer in \[1, 16\]/],
    [{ replicas: MAX_REPLICAS + 1 }, /--replicas/],
    [{ replicas: 2.5 }, /--replicas/],
    [{ httpPort: 65536 }, /--http-port must be an integer in \[0, 65535\]/],
    [{ grpcPort: -1 }, /--grpc-port/],
    [{ statsPort: Number.NaN }, /--stats-port/],
    [{ grpcPort: 8080 }, /must differ/],
  ])('refuses %o', (bad, message) => {
    expect(() => checkClusterOptions({ ...good, ...bad })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) }));
  });
  it('refuses a balancer port already in use before starting anything', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await expect(startCluster({ replicas: 1, httpPort: 0, grpcPort: port, statsPort: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: `--grpc-port ${port}: the port is in use on 127.0.0.1` });
    } finally {
      busy.close();
    }
  });
});
