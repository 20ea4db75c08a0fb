/**
 * Time budget of `deno task soak`: each phase gets a share of the run and an
 * absolute deadline, so a phase that overruns shortens the next ones instead
 * of stretching the whole run.
 *
 * @module
 */

/** A phase and its share of the run. */
export interface PhaseShare {
  /** Phase name as printed. */
  name: string;
  /** Relative weight; the shares of the selected phases are normalised to 1. */
  share: number;
}

/** A phase with its planned window, in `performance.now()` milliseconds. */
export interface PhasePlan extends PhaseShare {
  /** When the phase is planned to start. */
  startMs: number;
  /** Its planned length. */
  budgetMs: number;
  /** When it must have finished, teardown included. */
  deadlineMs: number;
}

/**
 * Splits `totalMs` starting at `startMs` among `phases` by their shares, back
 * to back: phase i ends at `startMs + totalMs × (share_0 + … + share_i) / Σ`.
 * For example shares 3 and 1 of 60 s from t = 1 s give 1–46 s and 46–61 s.
 */
export function planPhases(
  startMs: number,
  totalMs: number,
  phases: readonly PhaseShare[],
): PhasePlan[] {
  if (!(totalMs > 0)) {
    throw new RangeError(`Cannot plan phases: total ${totalMs} ms is not positive`);
  }
  const sum = phases.reduce((a, p) => a + p.share, 0);
  if (!(sum > 0)) throw new RangeError("Cannot plan phases: the shares add up to 0");
  const plans: PhasePlan[] = [];
  let cumulative = 0;
  for (const p of phases) {
    if (!(p.share >= 0)) {
      throw new RangeError(`Cannot plan phase "${p.name}": share ${p.share} is negative`);
    }
    const start = startMs + (totalMs * cumulative) / sum;
    cumulative += p.share;
    const deadline = startMs + (totalMs * cumulative) / sum;
    plans.push({ ...p, startMs: start, budgetMs: deadline - start, deadlineMs: deadline });
  }
  return plans;
}
