// Staff's verdict on one material of a booking (per-file pre-review, docs/appointments.md):
// accepted, or needs replacing with one of the reason codes (vtax/contract/appointments.py
// `MaterialIssue`) and a note the taxpayer reads; `other` needs the note. Checked here as the
// server's model checks it, so the form says what is missing before anything is sent.
import type { MaterialOut, MaterialVerdictIn } from '@/contract';
import { ApiError } from '@/core/errors';

export type MaterialIssue = NonNullable<MaterialVerdictIn['reason']>;
export const MATERIAL_ISSUES: readonly MaterialIssue[] = ['illegible', 'wrong_document', 'expired', 'incomplete', 'other'];
export type ReviewMaterial = (m: MaterialOut, body: MaterialVerdictIn) => Promise<void>;

/** The body of a "needs replacing" verdict, or `needIssue` / `needNote` when it is not complete. */
export function needsReplacing(reason: MaterialIssue | '', note: string): MaterialVerdictIn {
  if (!reason) throw new ApiError('needIssue');
  const text = note.trim();
  if (reason === 'other' && !text) throw new ApiError('needNote');
  return { verdict: 'needs_replacing', reason, note: text };
}
