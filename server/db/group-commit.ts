/**
 * Group commit: callers each hand over one item and wait for its own result; the items handed over while the
 * previous flush was running, or during a short delay before the next one, are written together (one statement, or
 * one transaction, for many callers). One flush runs at a time. The database work per item then shrinks as the load
 * grows instead of growing with it: what matters on PGlite (one query at a time, in process, and every query, even
 * BEGIN, has a fixed cost of about a millisecond of CPU) and what saves round trips and connections on PostgreSQL.
 */
export class GroupCommit<I, O> {
  readonly #flush: (items: I[]) => Promise<O[]>;
  readonly #maxGroup: number;
  readonly #delayMs: number;
  #queue: Array<{ item: I; resolve: (output: O) => void; reject: (error: unknown) => void }> = [];
  #running = false;
  /** Ends the current delay early (the group is full). */
  #wake: (() => void) | null = null;

  /**
   * `flush` writes a group and answers one output per item, in order. When a flush of several items throws, each
   * of them is flushed again on its own, so that one item the database refuses does not fail the others with it.
   * `delayMs`: how long a group waits for more items before it is flushed (0: only until the callers woken by the
   * same I/O have joined), unless it already holds `maxGroup`.
   */
  constructor(flush: (items: I[]) => Promise<O[]>, options: { maxGroup: number; delayMs: number }) {
    this.#flush = flush;
    this.#maxGroup = options.maxGroup;
    this.#delayMs = options.delayMs;
  }

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#running) void this.#drain();
      else if (this.#queue.length >= this.#maxGroup) this.#wake?.();
    });
  }

  #delay(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), this.#delayMs);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        if (this.#delayMs > 0 && this.#queue.length < this.#maxGroup) await this.#delay();
        // One turn of the event loop in any case: the callers woken by the same I/O (answers read together) join.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const group = this.#queue.splice(0, this.#maxGroup);
        try {
          const outputs = await this.#flush(group.map((entry) => entry.item));
          group.forEach((entry, i) => entry.resolve(outputs[i]!));
        } catch (error) {
          if (group.length === 1) {
            group[0]!.reject(error);
            continue;
          }
          for (const entry of group) {
            try {
              const [output] = await this.#flush([entry.item]);
              entry.resolve(output!);
            } catch (alone) {
              entry.reject(alone);
            }
          }
        }
      }
    } finally {
      this.#running = false;
    }
  }
}

