import { Resolver } from 'node:dns/promises';
import { startDnsServer } from '../test/helpers/dns-server.js';
const s = await startDnsServer({ 'a.test': { A: ['1.2.3.4','5.6.7.8'], AAAA: ['::1'], ttl: 7 }, 'v4only.test': { A: ['1.1.1.1'] } });
const r = new Resolver({ timeout: 200, tries: 1 });
r.setServers([s.server]);
console.log(r.getServers());
console.log(await r.resolve4('a.test', { ttl: true }), await r.resolve6('A.TEST.', { ttl: true }));
for (const [n, f] of [['nx.test', 'resolve4'], ['v4only.test', 'resolve6']] as const) {
  try { await r[f](n, { ttl: true }); } catch (e) { console.log(n, (e as any).code, (e as Error).message); }
}
const sf = await startDnsServer({}, { servfail: true });
r.setServers([sf.server]);
try { await r.resolve4('x.test', { ttl: true }); } catch (e) { console.log('servfail', (e as any).code); }
const dr = await startDnsServer({}, { drop: true });
r.setServers([dr.server]);
let t = Date.now();
try { await r.resolve4('x.test', { ttl: true }); } catch (e) { console.log('drop', (e as any).code, Date.now() - t, dr.queries.length); }
r.setServers(['127.0.0.1:1']);
t = Date.now();
try { await r.resolve4('x.test', { ttl: true }); } catch (e) { console.log('refused', (e as any).code, Date.now() - t); }
const p = r.resolve4('y.test'); r.cancel(); try { await p } catch (e) { console.log('cancel', (e as any).code); }
console.log(s.queries);
await s.close(); await sf.close(); await dr.close();
