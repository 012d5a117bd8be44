/** An entry of the eligible-order index: valid while `version` matches its row's. */
export interface HeapEntry<R> {
  readonly deadline: number;
  readonly seq: number;
  readonly row: R;
  readonly version: number;
}

/** A binary min-heap in eligible order: earliest deadline, then insertion order. */
export class EligibleHeap<R> {
  readonly #a: Array<HeapEntry<R>> = [];

  get size(): number {
    return this.#a.length;
  }

  /** Every entry, in no particular order. */
  entries(): readonly HeapEntry<R>[] {
    return this.#a;
  }

  peek(): HeapEntry<R> | undefined {
    return this.#a[0];
  }

  push(entry: HeapEntry<R>): void {
    const a = this.#a;
    a.push(entry);
    for (let i = a.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): HeapEntry<R> | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Keeps only the entries `keep` accepts (drops stale ones). */
  rebuild(keep: (entry: HeapEntry<R>) => boolean): void {
    const kept = this.#a.filter(keep);
    this.#a.length = 0;
    for (const entry of kept) this.push(entry);
  }
}

/** Whether `a` comes before `b` in eligible order. */
export function before<R>(a: HeapEntry<R>, b: HeapEntry<R>): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}
