/**
 * Per-watch event bookkeeping of bench/watch_clients.ts in `track` mode:
 * which sequence numbers each watch received, and the tally against what
 * the upstream sent.
 *
 * @module
 */

/** What one tracked watch received: a bitmap of sequence numbers. */
export interface Tracked {
  seen: Uint8Array;
  distinct: number;
  duplicates: number;
  outOfOrder: number;
  last: number;
}

/** A watch that has received nothing yet. */
export function newTracked(): Tracked {
  return {
    seen: new Uint8Array(1024),
    distinct: 0,
    duplicates: 0,
    outOfOrder: 0,
    last: -1,
  };
}

/** Marks `seq` as received by `watch`; counts repeats and reordering. */
export function mark(watch: Tracked, seq: number): void {
  if (seq >= watch.seen.length) {
    const grown = new Uint8Array(Math.max(seq + 1, watch.seen.length * 2));
    grown.set(watch.seen);
    watch.seen = grown;
  }
  if (watch.seen[seq]) watch.duplicates++;
  else {
    watch.seen[seq] = 1;
    watch.distinct++;
  }
  if (seq < watch.last) watch.outOfOrder++;
  watch.last = seq;
}

/**
 * Events lost per watch given that the upstream pushed `sent` of them
 * (sequence numbers 0..sent-1) while every watch was open.
 */
export function tallyWatches(tracked: Tracked[], sent: number) {
  let lost = 0;
  let watchesWithLoss = 0;
  let received = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let minDistinct = Infinity;
  for (const w of tracked) {
    let got = 0;
    for (let i = 0; i < Math.min(sent, w.seen.length); i++) got += w.seen[i];
    lost += sent - got;
    if (got < sent) watchesWithLoss++;
    received += w.distinct;
    duplicates += w.duplicates;
    outOfOrder += w.outOfOrder;
    minDistinct = Math.min(minDistinct, got);
  }
  return {
    watches: tracked.length,
    expected: sent * tracked.length,
    received,
    lost,
    watchesWithLoss,
    minPerWatch: tracked.length ? minDistinct : 0,
    duplicates,
    outOfOrder,
  };
}
