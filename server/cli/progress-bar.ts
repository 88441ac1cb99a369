/**
 * The reconciliation command's progress on stderr: a one-line bar redrawn in place on a terminal, plain lines
 * otherwise (logs, CI, pipes). The bar fills by Tupay's date windows: deposits are the first 45 %, cash-outs
 * the next 45 %, building the report the last 10 %. A window counts as read once the BFF reports it.
 */

export type ReadPhase = 'deposits' | 'cashouts';

export type ProgressState =
  | { phase: ReadPhase; window: number; windows: number; records: number }
  | { phase: 'report' };

export type WritableLike = { write(chunk: string): unknown };

export const PROGRESS_BAR_WIDTH = 30;

const SHARE = { deposits: { start: 0, size: 0.45 }, cashouts: { start: 0.45, size: 0.45 }, report: { start: 0.9, size: 0.1 } };
const LABEL = { deposits: 'Depósitos', cashouts: 'Retiros', report: 'Reporte' };
const READING = { deposits: 'Leyendo depósitos de Tupay', cashouts: 'Leyendo retiros de Tupay' };
const BUILDING_REPORT = 'Generando el reporte';
const LABEL_WIDTH = Math.max(...Object.values(LABEL).map((label) => label.length));
// Floating-point noise (0.45 × 2/3 × 30 = 8.999…) must not take a cell or a percent off.
const EPSILON = 1e-9;
const integers = new Intl.NumberFormat('es-MX', { maximumFractionDigits: 0 });

function wholeNumber(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return min;
  return Math.min(max, Math.max(min, Math.floor(value)));
}

/** The share of the whole run done, 0–1: windows read in the phase, placed in that phase's slice of the bar. */
export function progressFraction(state: ProgressState): number {
  const share = SHARE[state.phase];
  if (state.phase === 'report') return share.start;
  const windows = wholeNumber(state.windows, 1, Number.MAX_SAFE_INTEGER);
  const window = wholeNumber(state.window, 0, windows);
  return share.start + (share.size * window) / windows;
}

/** What the phase is doing, in words: "Leyendo depósitos de Tupay: ventana 2/3, 150 registros". */
export function describeProgress(state: ProgressState): string {
  if (state.phase === 'report') return BUILDING_REPORT;
  const { window, windows, records } = counters(state);
  return `${READING[state.phase]}: ventana ${window}/${windows}, ${records} registros`;
}

function counters(state: { window: number; windows: number; records: number }) {
  const windows = wholeNumber(state.windows, 1, Number.MAX_SAFE_INTEGER);
  return {
    windows,
    window: wholeNumber(state.window, 0, windows),
    records: integers.format(wholeNumber(state.records, 0, Number.MAX_SAFE_INTEGER)),
  };
}

/**
 * One line of the bar, `width` cells wide (at least 1):
 * "Depósitos ██████████░░░░░░░░░░░░░░░░░░░░  30%  ventana 2/3 · 150 registros".
 */
export function renderProgress(state: ProgressState, width: number = PROGRESS_BAR_WIDTH): string {
  const cells = Number.isFinite(width) ? Math.max(1, Math.floor(width)) : PROGRESS_BAR_WIDTH;
  const fraction = Math.min(1, Math.max(0, progressFraction(state)));
  const filled = Math.min(cells, Math.floor(fraction * cells + EPSILON));
  const bar = '█'.repeat(filled) + '░'.repeat(cells - filled);
  const percent = `${Math.floor(fraction * 100 + EPSILON)}%`.padStart(4);
  const label = LABEL[state.phase].padEnd(LABEL_WIDTH);
  if (state.phase === 'report') return `${label} ${bar} ${percent}  generando el reporte`;
  const { window, windows, records } = counters(state);
  return `${label} ${bar} ${percent}  ventana ${window}/${windows} · ${records} registros`;
}

export type ProgressWriter = {
  update(state: ProgressState): void;
  /** Clears the bar (terminal); call before printing anything else on the same stream. */
  finish(): void;
};

const CLEAR_LINE = '\r\x1b[K';

/**
 * On a terminal, redraws the bar in place (`\r`, then erase to the end of the line); cut to `columns` − 1 so
 * the line never wraps. Elsewhere, one plain line each time the phase or the window changes.
 */
export function createProgressWriter(
  stream: WritableLike,
  options: { isTTY: boolean; width?: number; columns?: number | undefined },
): ProgressWriter {
  let last: string | null = null;
  let drawn = false;
  return {
    update(state) {
      if (options.isTTY) {
        let line = renderProgress(state, options.width ?? PROGRESS_BAR_WIDTH);
        if (options.columns && options.columns > 1) line = line.slice(0, options.columns - 1);
        if (line === last) return;
        last = line;
        drawn = true;
        stream.write(`${CLEAR_LINE}${line}`);
        return;
      }
      const key = state.phase === 'report' ? state.phase : `${state.phase}:${counters(state).window}`;
      if (key === last) return;
      last = key;
      stream.write(`${describeProgress(state)}\n`);
    },
    finish() {
      if (drawn) stream.write(CLEAR_LINE);
      drawn = false;
      last = null;
    },
  };
}
