// A separate process racing for the same items: `node race-child.mjs <store> <target> <table> <items> <mode>`.
// It prints `ready`, waits for `go` on stdin (sent once every racer is ready), then races.
// Prints one JSON line: the keys this process won. Uses the built package (dist/), as a user would.
import { Tracker } from '../../dist/index.js';
import { jobDefinition } from './job-definition.mjs';
import { openStore } from './open-store.mjs';

const [kind, target, table, items, mode] = process.argv.slice(2);
const { store, close } = await openStore(kind, target, table);

const tracker = new Tracker(jobDefinition(store));
await tracker.init();
const owner = `proc-${process.pid}`;
// line up with the other processes so that the claims really overlap, however slowly each started
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.pause();

const won = [];
if (mode === 'by-key') {
  const ids = Array.from({ length: Number(items) }, (_, i) => i);
  const leases = await Promise.all(ids.flatMap((id) => [1, 2, 3, 4].map(() => tracker.claim('run', { owner, key: { n: id } }))));
  for (const lease of leases) if (lease) won.push(lease.key.n);
} else {
  const loops = [1, 2, 3, 4].map(async () => {
    for (;;) {
      const lease = await tracker.claim('run', { owner });
      if (!lease) return;
      won.push(lease.key.n);
    }
  });
  await Promise.all(loops);
}
await close();
process.stdout.write(`${JSON.stringify({ won })}\n`);
