/** `npm run demo -- <name> [options]`: demos that drive a running server. */
import { runBanditDemo } from './bandit.js';

const demos: Record<string, (args: string[]) => Promise<void>> = { bandit: runBanditDemo };

const [name, ...args] = process.argv.slice(2);
const demo = name === undefined ? undefined : demos[name];
if (!demo) {
  console.error(`usage: npm run demo -- <${Object.keys(demos).join('|')}> [options]`);
  process.exit(2);
}
demo(args).catch((e: unknown) => {
  console.error(`demo ${name} failed: ${(e as Error).message}`);
  process.exit(1);
});
