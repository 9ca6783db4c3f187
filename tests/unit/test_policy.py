from vtax.queue import policy
from vtax.queue.model import AgentState, Ticket


def ticket(tid, category="invoices", language="zh-CN", joined_at=0.0, priority=0):
    return Ticket(
        id=tid,
        session_id="s" + tid,
        taxpayer_id="t" + tid,
        category=category,
        language=language,
        channel="web",
        question="?",
        joined_at=joined_at,
        priority=priority,
    )


def agent(aid, skills=None, languages=("zh-CN",), status="available", idle_since=0.0):
    return AgentState(
        id=aid,
        name=aid,
        skills=skills or {"invoices": 3},
        languages=frozenset(languages),
        status=status,
        idle_since=idle_since,
    )


def test_eligibility_needs_category_and_language():
    a = agent("a", {"invoices": 2}, ("yue",))
    assert policy.eligible(a, ticket("1", language="yue"))
    assert not policy.eligible(a, ticket("2", language="en"))
    assert not policy.eligible(a, ticket("3", category="registration", language="yue"))


def test_order_is_priority_then_time_waited():
    tickets = [
        ticket("late", joined_at=5),
        ticket("early", joined_at=1),
        ticket("elderly", joined_at=9, priority=1),
    ]
    order = [t.id for t in sorted(tickets, key=policy.ticket_order_key)]
    assert order == ["elderly", "early", "late"]


def test_longest_idle_agent_gets_the_ticket():
    t = ticket("1")
    agents = [
        agent("recent", idle_since=50),
        agent("longest", idle_since=10),
        agent("busy", status="busy", idle_since=0),
    ]
    assert policy.choose_agent(agents, t).id == "longest"


def test_plan_gives_each_agent_at_most_one_ticket_and_skips_ineligible():
    tickets = [
        ticket("1", joined_at=1),
        ticket("2", joined_at=2, language="en"),
        ticket("3", joined_at=3),
    ]
    agents = [agent("a", idle_since=1), agent("b", idle_since=2)]
    pairs = [(t.id, a.id) for t, a in policy.plan_offers(tickets, agents)]
    assert pairs == [("1", "a"), ("3", "b")]


def test_tickets_already_offered_are_not_planned_again():
    t = ticket("1")
    t.offer_id = "o"
    assert policy.plan_offers([t], [agent("a")]) == []


def test_positions_count_within_a_category():
    tickets = [
        ticket("1", joined_at=1),
        ticket("2", "registration", joined_at=2),
        ticket("3", joined_at=3),
    ]
    assert policy.positions(tickets) == {"1": 1, "2": 1, "3": 2}


def test_estimated_wait():
    assert policy.estimated_wait_s(1, 2, 1, 300) == 0
    assert policy.estimated_wait_s(1, 2, 0, 300) == 75
    assert policy.estimated_wait_s(3, 2, 0, 300) == 375
    assert policy.estimated_wait_s(2, 0, 0, 300) == 450  # nobody staffed: assume one
