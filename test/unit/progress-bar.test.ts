import { describe, expect, it } from 'vitest';
import {
  createProgressWriter,
  describeProgress,
  progressFraction,
  renderProgress,
  type ProgressState,
} from '../../server/cli/progress-bar.js';

const deposits = (window: number, windows: number, records = 0): ProgressState => ({ phase: 'deposits', window, windows, records });
const cashouts = (window: number, windows: number, records = 0): ProgressState => ({ phase: 'cashouts', window, windows, records });
const filledCells = (line: string) => [...line].filter((char) => char === '█').length;
const emptyCells = (line: string) => [...line].filter((char) => char === '░').length;

function collect() {
  const chunks: string[] = [];
  return { chunks, stream: { write: (chunk: string) => chunks.push(chunk) } };
}

describe('progress fraction', () => {
  it('when deposits are read, then their windows fill the first 45 %', () => {
    expect(progressFraction(deposits(0, 3))).toBe(0);
    expect(progressFraction(deposits(1, 3))).toBeCloseTo(0.15);
    expect(progressFraction(deposits(3, 3))).toBeCloseTo(0.45);
  });

  it('when cash-outs are read, then their windows fill the next 45 %', () => {
    expect(progressFraction(cashouts(0, 2))).toBeCloseTo(0.45);
    expect(progressFraction(cashouts(1, 2))).toBeCloseTo(0.675);
    expect(progressFraction(cashouts(2, 2))).toBeCloseTo(0.9);
  });

  it('when the report is being built, then the bar stands at 90 % (the last 10 % is the report)', () => {
    expect(progressFraction({ phase: 'report' })).toBeCloseTo(0.9);
  });

  it('when the counters are out of range or not numbers, then they are clamped instead of overflowing the phase', () => {
    expect(progressFraction(deposits(5, 3))).toBeCloseTo(0.45);
    expect(progressFraction(deposits(-2, 3))).toBe(0);
    expect(progressFraction(cashouts(4, 0))).toBeCloseTo(0.9);
    expect(progressFraction(deposits(Number.NaN, 3))).toBe(0);
    expect(progressFraction(deposits(1, Number.NaN))).toBeCloseTo(0.45); // no usable count: one window
  });
});

describe('renderProgress', () => {
  it('when rendered at the default width, then the bar is 30 cells with the phase, the window and the records', () => {
    const line = renderProgress(deposits(2, 3, 1500));
    expect(filledCells(line) + emptyCells(line)).toBe(30);
    expect(filledCells(line)).toBe(9);
    expect(line).toBe(`Depósitos ${'█'.repeat(9)}${'░'.repeat(21)}  30%  ventana 2/3 · 1,500 registros`);
  });

  it('when cash-outs and then the report are rendered, then each shows its own label and share', () => {
    const cashoutLine = renderProgress(cashouts(1, 2, 8), 20);
    expect(cashoutLine.startsWith('Retiros   ')).toBe(true);
    expect(filledCells(cashoutLine)).toBe(13);
    expect(cashoutLine).toContain(' 67%  ventana 1/2 · 8 registros');
    const reportLine = renderProgress({ phase: 'report' }, 20);
    expect(reportLine).toBe(`Reporte   ${'█'.repeat(18)}${'░'.repeat(2)}  90%  generando el reporte`);
  });

  it('when a phase is complete, then floating-point noise takes no cell off', () => {
    for (const width of [7, 10, 29, 30, 31, 100]) {
      expect(filledCells(renderProgress(deposits(3, 3), width))).toBe(Math.floor(0.45 * width + 1e-9));
      expect(filledCells(renderProgress(cashouts(3, 3), width))).toBe(Math.floor(0.9 * width + 1e-9));
    }
    expect(filledCells(renderProgress(deposits(2, 3), 30))).toBe(9);
  });

  it('when the width is odd, fractional, zero or not a number, then the bar is still whole cells and at least one', () => {
    expect(filledCells(renderProgress(deposits(3, 3), 10.9)) + emptyCells(renderProgress(deposits(3, 3), 10.9))).toBe(10);
    const narrow = renderProgress(deposits(1, 1), 0);
    expect(filledCells(narrow) + emptyCells(narrow)).toBe(1);
    const fallback = renderProgress(deposits(1, 1), Number.NaN);
    expect(filledCells(fallback) + emptyCells(fallback)).toBe(30);
  });

  it('when the window is past the last one, then it is shown clamped and the bar never overflows', () => {
    const line = renderProgress(deposits(9, 3, -4), 30);
    expect(line).toContain('ventana 3/3 · 0 registros');
    expect(filledCells(line) + emptyCells(line)).toBe(30);
  });
});

describe('describeProgress', () => {
  it('when described in words, then it says which Tupay list, the window and the records', () => {
    expect(describeProgress(deposits(2, 3, 150))).toBe('Leyendo depósitos de Tupay: ventana 2/3, 150 registros');
    expect(describeProgress(cashouts(1, 1, 8))).toBe('Leyendo retiros de Tupay: ventana 1/1, 8 registros');
    expect(describeProgress({ phase: 'report' })).toBe('Generando el reporte');
  });
});

describe('createProgressWriter', () => {
  it('when stderr is a terminal, then the line is redrawn in place and cleared at the end', () => {
    const { chunks, stream } = collect();
    const writer = createProgressWriter(stream, { isTTY: true });
    writer.update(deposits(1, 2, 10));
    writer.update(deposits(1, 2, 10));
    writer.update(cashouts(1, 1, 3));
    writer.finish();
    expect(chunks).toEqual([
      `\r\x1b[K${renderProgress(deposits(1, 2, 10), 30)}`,
      `\r\x1b[K${renderProgress(cashouts(1, 1, 3), 30)}`,
      '\r\x1b[K',
    ]);
    expect(chunks.join('')).not.toContain('\n');
  });

  it('when the terminal is narrow, then the line is cut so it never wraps', () => {
    const { chunks, stream } = collect();
    createProgressWriter(stream, { isTTY: true, columns: 40 }).update(deposits(1, 2, 10));
    expect(chunks[0]).toBe(`\r\x1b[K${renderProgress(deposits(1, 2, 10), 30).slice(0, 39)}`);
  });

  it('when stderr is not a terminal, then one plain line is written per phase or window, with no escape codes', () => {
    const { chunks, stream } = collect();
    const writer = createProgressWriter(stream, { isTTY: false });
    writer.update(deposits(1, 2, 0));
    writer.update(deposits(1, 2, 100));
    writer.update(deposits(2, 2, 150));
    writer.update(cashouts(1, 1, 8));
    writer.update({ phase: 'report' });
    writer.update({ phase: 'report' });
    writer.finish();
    expect(chunks.join('')).toBe(
      'Leyendo depósitos de Tupay: ventana 1/2, 0 registros\n'
        + 'Leyendo depósitos de Tupay: ventana 2/2, 150 registros\n'
        + 'Leyendo retiros de Tupay: ventana 1/1, 8 registros\n'
        + 'Generando el reporte\n',
    );
  });

  it('when nothing was drawn, then finishing writes nothing', () => {
    const { chunks, stream } = collect();
    createProgressWriter(stream, { isTTY: true }).finish();
    expect(chunks).toEqual([]);
  });
});
