// Progress of a sync for a person: one line rewritten in place on a terminal
// (done/total, rate, ETA), plain lines when each progress step matters more
// than the screen (a log file, CI). A log line meant for the same terminal
// is written above the line being drawn, never glued onto it.

export interface ProgressReporter {
  update(done: number, total: number): void;
  /** Ends the in-place line, if any, before the summary is printed. */
  finish(): void;
}

/** The line being drawn in place, and where: a log line clears it first and draws it again after. */
let drawing: { stream: NodeJS.WriteStream; text: string } | undefined;

/** Runs `write` (a whole line on the terminal) with the progress line, if one is drawn, moved below it. */
export function aboveProgress(write: () => void): void {
  const line = drawing;
  if (line) line.stream.write('\r\u001b[K');
  write();
  if (line) line.stream.write(line.text);
}

function seconds(value: number): string {
  return value >= 90 ? `${Math.round(value / 60)} min` : `${Math.round(value)} s`;
}

export function progressReporter(stream: NodeJS.WriteStream, label: string, now = () => performance.now()): ProgressReporter {
  const started = now();
  let last = -1;
  let drawn = false;
  return {
    update(done, total) {
      if (done === last) return;
      last = done;
      const elapsed = (now() - started) / 1000;
      const rate = elapsed > 0 ? done / elapsed : 0;
      const eta = rate > 0 ? seconds((total - done) / rate) : '?';
      const line = `${label}: ${done}/${total} refreshed, ${rate.toFixed(1)}/s, ETA ${eta}`;
      if (stream.isTTY) {
        stream.write(`\r${line}\u001b[K`);
        drawn = true;
        drawing = { stream, text: line };
      } else {
        stream.write(`${line}\n`);
      }
    },
    finish() {
      if (drawn) stream.write('\n');
      if (drawing?.stream === stream) drawing = undefined;
    },
  };
}
