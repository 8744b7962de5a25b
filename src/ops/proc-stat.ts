// What Linux says of a process in /proc/<pid>/stat: the one reader for the
// launcher watch and the embedded server's checks. Elsewhere (no /proc) every
// read is undefined and callers fall back to doing nothing.
import { readFileSync } from 'node:fs';

export interface ProcessStat {
  /** One letter: R running, S sleeping, Z a zombie (ended, not yet reaped), ... */
  state: string;
  ppid: number;
  session: number;
  /** Clock ticks after boot: with the pid, names one process even after the pid is reused. */
  startTime: string;
}

/** Fields of /proc/<pid>/stat; the command name (2nd field) may hold spaces and parentheses, so fields are counted after its last ")". */
export function parseStat(text: string): ProcessStat | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state(3) ppid(4) pgrp(5) session(6) ... starttime(22).
  if (fields.length < 20) return undefined;
  return { state: fields[0]!, ppid: Number(fields[1]), session: Number(fields[3]), startTime: fields[19]! };
}

/** The process `pid` as /proc shows it, or undefined when it is gone (or there is no /proc). */
export function readStat(pid: number): ProcessStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Its command line, NUL-separated, or '' when it is gone. */
export function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** How often a process has given up the CPU: an idle shell in wait() does so only when woken. */
export function contextSwitches(pid: number): string | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1];
  } catch {
    return undefined;
  }
}
