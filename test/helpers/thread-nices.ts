import { readdirSync, readFileSync } from 'node:fs';

/** Nice values of this process's threads (field 19 of /proc/self/task/<tid>/stat; Linux only). */
export function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}
