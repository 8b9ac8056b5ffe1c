/**
 * Per-cluster outcomes for a call's `end` event, collected from its
 * upstream events, so no forwarding path has to collect them itself.
 *
 * @module
 */

import type { CallObservation, ClusterOutcome } from "./observer.ts";

/**
 * Wraps a call's observation so that its `end` event carries how each
 * cluster fared: every upstream request the call sent (a fan-out's, a
 * search's, a failover's tries) reports its answer's status or its failure
 * here. The pipeline wraps every call once, so no forwarding path has to
 * collect outcomes itself.
 */
export function withOutcomes(observation: CallObservation): CallObservation {
  const outcomes: ClusterOutcome[] = [];
  return {
    requestBodyBytes: observation.requestBodyBytes,
    responseBodyBytes: observation.responseBodyBytes,
    decided: observation.decided?.bind(observation),
    traceId: observation.traceId?.bind(observation),
    upstream(start) {
      const outcome: ClusterOutcome = { cluster: start.cluster };
      outcomes.push(outcome);
      const inner = observation.upstream?.(start);
      return {
        headers: inner?.headers,
        response(answer) {
          outcome.status = answer.status;
          inner?.response(answer);
        },
        failed(reason, detail) {
          outcome.error = reason;
          inner?.failed(reason, detail);
        },
      };
    },
    end(end) {
      observation.end({
        ...end,
        outcomes: end.outcomes.length > 0 ? end.outcomes : [...outcomes],
      });
    },
  };
}
