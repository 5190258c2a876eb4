// PLACEHOLDER (lead): replaced by branch `learn` at merge.
import { randomUUID } from 'node:crypto';
export function newEventId(): string {
  const t = Date.now().toString(16).padStart(12, '0');
  const r = randomUUID().replace(/-/g, '');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${r.slice(13, 16)}-${r.slice(16, 20)}-${r.slice(20, 32)}`;
}
