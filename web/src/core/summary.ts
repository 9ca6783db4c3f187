// The agent's summary of a session (the review loop's handle step), framework-free: the form's
// draft and the body `POST /api/sessions/{id}/summary` takes. Used by the agent desk and by a
// supervisor who took a session over from the wallboard.
import type { SummaryBody } from '@/contract';

export interface SummaryDraft {
  asked: string;
  category: string;
  handled: string;
  actions: string; // one per line
  result: SummaryBody['result'];
  due: string; // yyyy-mm-dd, for a follow-up
  items: string[];
}

/** A new draft from the ticket: the taxpayer's question and the category asked. */
export function draftFrom(ticket: { question?: string; category?: string }): SummaryDraft {
  return { asked: ticket.question || '', category: ticket.category || '', handled: '', actions: '', result: 'resolved', due: '', items: [] };
}

/** The body of the summary: the category only when the agent changed the one asked. */
export function summaryBody(d: SummaryDraft, askedCategory: string | undefined): SummaryBody {
  const body: SummaryBody = { asked: d.asked.trim(), handled: d.handled.trim(), result: d.result };
  if (d.category && d.category !== askedCategory) body.category = d.category as SummaryBody['category'];
  if (d.items.length) body.items = [...d.items] as NonNullable<SummaryBody['items']>; // codes from the catalog
  const acts = d.actions
    .split('\n')
    .map((a) => a.trim())
    .filter(Boolean);
  if (acts.length) body.actions = acts;
  if (d.result === 'follow_up' && d.due) body.follow_up_due = d.due;
  return body;
}
