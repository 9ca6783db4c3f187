// The assistant first (以智能为先、人工兜底): after sign-in the taxpayer asks the assistant;
// each answer shows its links and two alternatives, asks "did this solve it?", and offers a
// person at every turn. "Talk to a person" hands the whole conversation over
// (`consultation:handoff`): inside opening hours it joins the video queue (the taxpayer
// store's queue step takes over); outside them the answer says when the queue opens and the
// page offers an appointment instead. Events and answers are the contract's (vtax/contract/
// consultation.py); the assistant's own words (greeting, no-answer) come from the server in
// the page's language.
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type { AnswerEntry, ConsultationHandoff, EntryRef, HandoffView, ReplyView } from '@/contract';
import { ApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { emitAck } from '@/core/socket';
import { useTaxpayer } from './store';

export type PageLocale = 'zh-CN' | 'zh-HK' | 'en' | 'pt';

/** One line of the conversation on screen. */
export interface Turn {
  id: number;
  speaker: 'taxpayer' | 'assistant';
  text: string;
  /** the assistant's reply: its turn (feedback names it), the entry, the alternatives */
  seq?: number;
  kind?: ReplyView['kind'];
  entry?: AnswerEntry | null;
  alternatives?: EntryRef[];
  askFeedback?: boolean;
  /** the taxpayer's vote on this answer */
  helpful?: boolean | null;
}

/** Suggested first questions: keys of `assistant.suggested.*` in the page language. */
export const SUGGESTED = ['invoice', 'declare', 'iit', 'social', 'register'] as const;

export const useAssistant = defineStore('assistant', () => {
  const tp = useTaxpayer();
  const conversationId = ref<string | null>(null);
  const locale = ref<PageLocale>('zh-CN');
  const turns = ref<Turn[]>([]);
  const draft = ref('');
  const asking = ref(false);
  /** the hand-off panel: the category and service language the taxpayer may correct */
  const handoffOpen = ref(false);
  const handoffForm = ref({ category: '', language: '' });
  /** the last hand-off's answer (route queue: in the queue; callback: closed, next_open_at) */
  const handoff = shallowRef<HandoffView | null>(null);
  let nextId = 1;

  const questions = computed(() => turns.value.filter((t) => t.speaker === 'taxpayer').length);
  /** the category of the last entry the assistant answered with, for the hand-off panel */
  const detectedCategory = computed(() => {
    for (const t of [...turns.value].reverse()) {
      if (t.entry) return t.entry.category;
      const alt = t.alternatives?.[0];
      if (alt) return alt.category;
    }
    return '';
  });

  watch(
    () => tp.token,
    (tok) => {
      if (!tok) reset();
    },
  );
  // Back on the question step after a hand-off into the queue (left the queue, or after the
  // call): that conversation is over; the next question starts a new one.
  watch(
    () => tp.step,
    (st) => {
      if (st === 'request' && handoff.value?.route === 'queue') reset();
    },
  );
  watch(turns, (v) => (vtax.assistantTurns = v.length), { deep: true });

  function reset(): void {
    conversationId.value = null;
    turns.value = [];
    draft.value = '';
    handoffOpen.value = false;
    handoff.value = null;
  }

  function push(turn: Omit<Turn, 'id'>): Turn {
    const t: Turn = { id: nextId++, ...turn };
    turns.value.push(t);
    return turns.value[turns.value.length - 1] as Turn;
  }

  async function socket() {
    if (!tp.token) throw new ApiError('unauthorized');
    return tp.call.ensureSocket(tp.token);
  }

  /** Open the conversation (the greeting) in the page's language, once per sign-in. */
  async function begin(pageLocale: PageLocale): Promise<void> {
    locale.value = pageLocale;
    if (conversationId.value) return;
    const s = await socket();
    const view = await emitAck(s, 'consultation:start', { language: pageLocale, channel: tp.form.channel as 'web' | 'mobile' | 'kiosk' });
    conversationId.value = view.conversation_id;
    vtax.conversationId = view.conversation_id;
    push({ speaker: 'assistant', text: view.message });
  }

  /** Ask one question (typed, or a suggested one). */
  async function ask(text?: string): Promise<void> {
    const q = (text ?? draft.value).trim();
    if (!q) throw new ApiError('needQuestion');
    if (!conversationId.value) await begin(locale.value);
    const s = await socket();
    asking.value = true;
    try {
      push({ speaker: 'taxpayer', text: q });
      draft.value = '';
      const reply = await emitAck(s, 'consultation:ask', { conversation_id: conversationId.value as string, text: q.slice(0, 500) });
      onReply(reply);
    } catch (e) {
      // "转人工" before any business was named: the taxpayer picks the category
      if (e instanceof ApiError && e.code === 'category_required') openHandoff();
      throw e;
    } finally {
      asking.value = false;
    }
  }

  function onReply(reply: ReplyView): void {
    push({
      speaker: 'assistant',
      text: reply.message,
      seq: reply.seq,
      kind: reply.kind,
      entry: reply.entry || null,
      alternatives: reply.alternatives || [],
      askFeedback: reply.ask_feedback,
      helpful: null,
    });
    vtax.lastReply = reply;
    if (reply.handoff) onHandoff(reply.handoff);
  }

  /** "Did this solve it?" on one answer; a "no" may hand off by itself (repeated failure). */
  async function vote(turn: Turn, helpful: boolean): Promise<void> {
    if (!conversationId.value || !turn.seq) return;
    const s = await socket();
    const fb = await emitAck(s, 'consultation:feedback', { conversation_id: conversationId.value, seq: turn.seq, helpful });
    turn.helpful = fb.helpful;
    if (fb.handoff) onHandoff(fb.handoff);
  }

  /** "Talk to a person": the panel with the detected category and language to correct. */
  function openHandoff(): void {
    const cats = tp.catalog?.categories || [];
    const cat = detectedCategory.value;
    handoffForm.value = {
      category: cats.some((c) => c.code === cat) ? cat : tp.form.category,
      language: tp.form.language,
    };
    handoffOpen.value = true;
  }

  /** Hand the conversation over; route queue joins the video queue with the transcript. */
  async function handOver(): Promise<void> {
    if (!conversationId.value) await begin(locale.value);
    const s = await socket();
    tp.call.preview(); // the camera's preview while waiting, as the form's start does
    const send = () => {
      const body: ConsultationHandoff = { conversation_id: conversationId.value as string };
      if (handoffForm.value.category) body.category = handoffForm.value.category as ConsultationHandoff['category'];
      if (handoffForm.value.language) body.language = handoffForm.value.language as ConsultationHandoff['language'];
      return emitAck(s, 'consultation:handoff', body);
    };
    let view: HandoffView;
    try {
      try {
        view = await send();
      } catch (e) {
        // One hand-off per conversation: this one was handed over already (e.g. out of
        // hours); a new conversation carries the request with the category chosen here.
        if (!(e instanceof ApiError && e.code === 'invalid_state')) throw e;
        conversationId.value = null;
        await begin(locale.value);
        view = await send();
      }
    } catch (e) {
      tp.call.releasePreview();
      throw e;
    }
    onHandoff(view);
  }

  function onHandoff(view: HandoffView): void {
    handoff.value = view;
    handoffOpen.value = false;
    vtax.handoff = view;
    if (view.route === 'queue' && view.queued) {
      tp.form.category = view.ticket.category;
      tp.form.language = view.ticket.language;
      tp.enterQueue(view.queued);
      return;
    }
    tp.call.releasePreview();
    if (view.route === 'queue' && view.queue_refused) {
      // already waiting, or in a call (another tab): say so instead of "connecting you"
      tp.setError(new ApiError(view.queue_refused));
      return;
    }
    push({ speaker: 'assistant', text: view.message });
  }

  /** Back from the queue or the call: a new conversation starts on the next question. */
  function startOver(): void {
    reset();
  }

  return {
    conversationId, locale, turns, draft, asking, handoffOpen, handoffForm, handoff, questions, detectedCategory,
    begin, ask, vote, openHandoff, handOver, startOver, reset,
  };
});
