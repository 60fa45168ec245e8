"""Every node kind, driven through the sans-IO interpreter as a port would drive it."""

from __future__ import annotations

import json
from datetime import datetime

from ivr_dialogs import (
    Callback,
    Digit,
    Digits,
    HangUp,
    Hangup,
    Listen,
    Lookup,
    LookupResult,
    NoInput,
    Queue,
    Say,
    SurveyAnswer,
    Transfer,
    Utterance,
    Voicemail,
)
from ivr_dialogs.hours import BusinessHours
from tests.ivr_dialogs.helpers import Session

SAY = """
dialog: t
languages: [en, fr]
start: hello
nodes:
  hello:
    type: say
    text: {en: "Hello {{ caller.name }}", fr: "Bonjour {{ caller.name }}"}
    audio: {en: hello_en.wav, fr: hello_fr.wav}
    next: bye
  bye:
    type: say
    text: Bye
"""


def test_say_picks_the_callers_language_and_audio_and_ends_without_next() -> None:
    s = Session(SAY, caller={"name": "Ana", "language": "fr"})
    first = s.actions[0]
    assert isinstance(first, Say)
    assert (first.text, first.lang, first.audio) == ("Bonjour Ana", "fr", "hello_fr.wav")
    assert s.said == ["Bonjour Ana", "Bye"]
    assert s.interpreter.done and s.interpreter.outcome == "completed"
    assert s.last == Hangup("completed")


def test_say_falls_back_to_the_default_language() -> None:
    s = Session(SAY, caller={"name": "Bo", "language": "de"})
    assert s.said[0] == "Hello Bo"


MENU = """
dialog: t
start: main
nodes:
  main:
    type: menu
    prompt: Press 1 for sales or 2 for support.
    options:
      - {digit: "1", phrases: [sales, buy something], next: sales}
      - {digit: "2", phrases: [support, help, technical support], next: support}
    no_input:
      retries: 2
      prompts: [I did not hear you., Last try. Press 1 or 2.]
      fallback: operator
    no_match:
      retries: 1
      prompts: [That is not an option.]
      fallback: operator
  sales: {type: queue, queue: sales}
  support: {type: queue, queue: support}
  operator: {type: queue, queue: operator}
"""


def test_menu_by_digit() -> None:
    s = Session(MENU)
    assert isinstance(s.last, Listen) and s.last.expect == "menu"
    assert "sales" in s.last.hints
    s.feed(Digit("2"))
    assert s.last == Queue("support")
    assert s.interpreter.outcome == "queued"


def test_menu_by_phrase_and_synonym_inside_a_sentence() -> None:
    s = Session(MENU)
    s.feed(Utterance("Hi, I need technical support please", 0.9))
    assert s.last == Queue("support")
    s = Session(MENU)
    s.feed(Utterance("I want to buy something", 0.8))
    assert s.last == Queue("sales")


def test_menu_spoken_digit_counts_as_the_key() -> None:
    s = Session(MENU)
    s.feed(Utterance("one"))
    assert s.last == Queue("sales")


def test_menu_no_input_escalates_then_falls_back() -> None:
    s = Session(MENU)
    s.feed(NoInput())
    assert s.said[-1] == "I did not hear you."
    s.feed(NoInput())
    assert s.said[-1] == "Last try. Press 1 or 2."
    assert isinstance(s.last, Listen)
    s.feed(NoInput())
    assert s.last == Queue("operator")


def test_menu_no_match_and_low_confidence() -> None:
    s = Session(MENU)
    s.feed(Digit("7"))
    assert s.said[-1] == "That is not an option."
    s.feed(Utterance("sales", confidence=0.1))  # too unsure: a no-match, not sales
    assert s.last == Queue("operator")


def test_counters_are_separate_for_no_input_and_no_match() -> None:
    s = Session(MENU)
    s.feed(NoInput(), Digit("9"), NoInput())
    assert isinstance(s.last, Listen)
    s.feed(Digit("1"))
    assert s.last == Queue("sales")


def ask(expect: str, extra: str = "") -> str:
    return f"""
dialog: t
start: q
nodes:
  q:
    type: ask
    expect: {expect}
    var: answer
    prompt: Go ahead.
{extra}
    no_input: {{retries: 0, fallback: failed}}
    no_match: {{retries: 1, prompts: [Again please.], fallback: failed}}
    next: done
  done: {{type: hangup, prompt: "Got {{{{ answer }}}}"}}
  failed: {{type: hangup, reason: failed}}
"""


def test_ask_digits_collects_key_by_key_until_the_terminator() -> None:
    s = Session(ask("digits", "    min_length: 3\n    max_length: 6"))
    listen = s.last
    assert isinstance(listen, Listen)
    assert (listen.min_digits, listen.max_digits, listen.terminator) == (3, 6, "#")
    assert s.feed(Digit("1"), Digit("2"), Digit("3")) == []
    s.feed(Digit("4"), Digit("#"))
    assert s.vars["answer"] == "1234"
    assert s.said[-1] == "Got 1234"


def test_ask_digits_stops_at_max_length_and_rejects_short_entries() -> None:
    s = Session(ask("digits", "    min_length: 3\n    max_length: 4"))
    s.feed(Digits("12#"))
    assert s.said[-1] == "Again please."
    s.feed(Digit("9"), Digit("8"), Digit("7"), Digit("6"))
    assert s.vars["answer"] == "9876"


def test_ask_digits_understands_spoken_digits() -> None:
    s = Session(ask("digits", "    min_length: 4\n    max_length: 4"))
    s.feed(Utterance("one two three four"))
    assert s.vars["answer"] == "1234"


def test_ask_speech_keeps_the_words() -> None:
    s = Session(ask("speech"))
    s.feed(Utterance("  my router keeps rebooting "))
    assert s.vars["answer"] == "my router keeps rebooting"


def test_ask_choice_by_digit_phrase_or_value() -> None:
    extra = """    choices:
      - {value: red, digit: "1", phrases: [crimson]}
      - {value: blue, digit: "2"}"""
    s = Session(ask("choice", extra))
    s.feed(Utterance("crimson I think"))
    assert s.vars["answer"] == "red"
    s = Session(ask("choice", extra))
    s.feed(Utterance("blue"))
    assert s.vars["answer"] == "blue"
    s = Session(ask("choice", extra))
    s.feed(Digit("2"))
    assert s.vars["answer"] == "blue"


def test_ask_yes_no() -> None:
    s = Session(ask("yes_no"))
    s.feed(Utterance("yeah sure"))
    assert s.vars["answer"] is True
    s = Session(ask("yes_no"))
    s.feed(Digit("2"))
    assert s.vars["answer"] is False
    s = Session(ask("yes_no"))
    s.feed(Utterance("maybe"))
    assert s.said[-1] == "Again please."


def test_ask_date_from_keys_words_and_relative_days() -> None:
    s = Session(ask("date"))
    s.feed(Digits("03122026#"))
    assert s.vars["answer"] == "2026-12-03"
    s = Session(ask("date"))
    s.feed(Utterance("December 3rd"))
    assert s.vars["answer"] == "2026-12-03"
    s = Session(ask("date"))
    s.feed(Utterance("tomorrow"))
    assert s.vars["answer"] == "2026-11-24"
    s = Session(ask("date"))
    s.feed(Digits("31022026"))  # no 31st of February
    assert s.said[-1] == "Again please."


def test_ask_amount_from_keys_and_words() -> None:
    s = Session(ask("amount"))
    s.feed(Digits("12*50#"))
    assert s.vars["answer"] == 12.5
    s = Session(ask("amount"))
    s.feed(Utterance("twenty five dollars and fifty cents"))
    assert s.vars["answer"] == 25.5


def test_ask_validation_turns_a_false_check_into_a_no_match() -> None:
    s = Session(ask("amount", "    validate: value >= 10 and value <= 500"))
    s.feed(Digits("5#"))
    assert s.said[-1] == "Again please."
    s.feed(Digits("50#"))
    assert s.vars["answer"] == 50
    s = Session(ask("amount", "    validate: value >= 10"))
    s.feed(Digits("5#"), Digits("6#"))
    assert s.last == Hangup("failed")


def test_input_without_handlers_hangs_up_after_default_retries() -> None:
    s = Session("""
dialog: t
start: q
nodes:
  q: {type: ask, expect: speech, var: x, prompt: Say something., next: end}
  end: {type: hangup}
""")
    s.feed(NoInput(), NoInput())
    assert isinstance(s.last, Listen)
    s.feed(NoInput())
    assert s.last == Hangup("no_input")
    assert s.interpreter.outcome == "hangup"


LOOKUP = """
dialog: t
start: find
variables: {account: "12 34/5"}
nodes:
  find:
    type: lookup
    method: POST
    url: "https://crm.example/api/{{ account }}?x=1"
    headers: {X-Account: "{{ account }}"}
    secret_headers: {Authorization: "Bearer ${CRM_TOKEN}"}
    body: {account: "{{ account }}", n: "{{ 40 + 2 }}", tags: [a, "{{ 'b' }}"]}
    timeout_s: 2
    map: {name: customer.name, first_order: orders.0.id}
    next: found
    on_error: failed
  found: {type: hangup, prompt: "Hello {{ name }}, order {{ first_order }}"}
  failed: {type: hangup, prompt: "Error {{ lookup_error }}", reason: lookup_failed}
"""


def test_lookup_emits_a_templated_request_with_secrets_left_as_placeholders() -> None:
    s = Session(LOOKUP)
    request = s.last
    assert isinstance(request, Lookup)
    assert request.method == "POST"
    assert request.url == "https://crm.example/api/12%2034%2F5?x=1"
    assert request.headers == {"X-Account": "12 34/5"}
    assert request.secret_headers == {"Authorization": "Bearer ${CRM_TOKEN}"}
    assert request.body == {"account": "12 34/5", "n": 42, "tags": ["a", "b"]}
    assert request.timeout_s == 2
    assert s.interpreter.waiting_for == "lookup"


def test_lookup_maps_json_fields_into_variables() -> None:
    s = Session(LOOKUP)
    s.feed(LookupResult(200, {"customer": {"name": "Ana"}, "orders": [{"id": 7}]}))
    assert s.said[-1] == "Hello Ana, order 7"
    assert s.vars["name"] == "Ana"


def test_lookup_error_branch_on_error_status_and_missing_field() -> None:
    for result, error in [
        (LookupResult(error="timeout"), "timeout"),
        (LookupResult(503, None), "HTTP status 503"),
        (LookupResult(200, {"customer": {}}), "field 'customer.name' missing in the response"),
    ]:
        s = Session(LOOKUP)
        s.feed(result)
        assert s.last == Hangup("lookup_failed")
        assert s.said[-1] == f"Error {error}"


BRANCH = """
dialog: t
start: route
business_hours: {mon-fri: "09:00-17:00"}
nodes:
  route:
    type: branch
    cases:
      - {when: caller.vip >= 2, next: vip}
      - {when: not business_hours_open, next: closed}
      - when: now.hour < 12 and starts_with(caller.number, '+44')
        next: uk_morning
    else: normal
  vip: {type: hangup, reason: vip}
  closed: {type: hangup, reason: closed}
  uk_morning: {type: hangup, reason: uk_morning}
  normal: {type: hangup, reason: normal}
"""


def test_branch_on_caller_time_and_business_hours() -> None:
    def reason(**kwargs: object) -> str:
        last = Session(BRANCH, **kwargs).last
        assert isinstance(last, Hangup)
        return last.reason

    assert reason(caller={"vip": 3}) == "vip"
    assert reason(caller={"number": "+4420"}, now=datetime(2026, 11, 22, 10)) == "closed"  # Sunday
    assert reason(caller={"number": "+4420"}) == "uk_morning"
    assert reason(caller={"number": "+4420"}, now=datetime(2026, 11, 23, 14)) == "normal"
    assert reason(caller={"number": "+1"}, business_hours=False) == "closed"
    hours = BusinessHours.parse({"mon": "09:00-09:30"})
    assert reason(caller={"number": "+1"}, business_hours=hours) == "closed"


def test_set_goto_and_language_switch() -> None:
    s = Session("""
dialog: t
languages: [en, es]
start: a
variables: {n: 1}
nodes:
  a: {type: set, values: {n: n + 1, label: "'x' + text(n)", language: "'es'", fixed: 5}, next: b}
  b: {type: goto, target: c}
  c: {type: say, text: {en: "n={{ n }}", es: "n es {{ n }} {{ label }} {{ fixed }}"}}
""")
    assert s.said == ["n es 2 x2 5"]  # values are set in order
    assert s.vars["language"] == "es"


SUB = """
dialog: t
start: call
subdialogs:
  pin:
    params: [tries_label]
    variables: {attempt: 0}
    start: ask_pin
    nodes:
      ask_pin:
        type: ask
        expect: digits
        var: pin
        min_length: 4
        max_length: 4
        prompt: "PIN please ({{ tries_label }})"
        no_input: {retries: 0, fallback: bad}
        no_match: {retries: 0, fallback: bad}
        next: check
      check:
        type: branch
        cases: [{when: pin == '1234', next: good}]
        else: bad
      good: {type: return, values: {verified: "true"}}
      bad: {type: return, values: {verified: "false"}}
nodes:
  call:
    type: subdialog
    dialog: pin
    params: {tries_label: "'last try'"}
    outputs: {ok: verified}
    next: after
  after:
    type: branch
    cases: [{when: ok, next: yes}]
    else: no
  yes: {type: hangup, reason: verified}
  no: {type: hangup, reason: not_verified}
"""


def test_subdialog_parameters_scope_and_outputs() -> None:
    s = Session(SUB)
    assert s.said == ["PIN please (last try)"]
    assert isinstance(s.last, Listen) and s.last.node == "pin.ask_pin"
    s.feed(Digits("1234"))
    assert s.last == Hangup("verified")
    assert s.vars["ok"] is True
    assert "pin" not in s.vars  # the sub-dialog's variables stay in its scope
    assert s.interpreter.trace["nodes"] == [
        "call",
        "pin.ask_pin",
        "pin.check",
        "pin.good",
        "after",
        "yes",
    ]
    s = Session(SUB)
    s.feed(Digits("9999"))
    assert s.last == Hangup("not_verified")


TERMINALS = """
dialog: t
start: pick
nodes:
  pick:
    type: menu
    prompt: pick
    options:
      - {digit: "1", next: q}
      - {digit: "2", next: tr}
      - {digit: "3", next: vm}
      - {digit: "4", next: cb}
      - {digit: "5", next: hu}
  q:
    type: queue
    queue: billing
    priority: "{{ 2 + caller.vip }}"
    skills: [billing, spanish]
    data: {account: "{{ caller.account }}", note: "VIP {{ caller.vip }}"}
    prompt: Please hold.
  tr: {type: transfer, number: "+1555{{ caller.vip }}", prompt: Transferring.}
  vm: {type: voicemail, mailbox: sales, max_seconds: 60, prompt: After the tone.}
  cb: {type: callback, queue: billing, priority: 4, prompt: We will call you.}
  hu: {type: hangup, reason: done, prompt: Goodbye.}
"""


def test_terminal_nodes_hand_off_with_their_data() -> None:
    caller = {"number": "+15550001", "vip": 1, "account": 987}
    expected = {
        "1": (
            Queue("billing", 3, ("billing", "spanish"), {"account": 987, "note": "VIP 1"}),
            "queued",
            "Please hold.",
        ),
        "2": (Transfer("+15551"), "transferred", "Transferring."),
        "3": (Voicemail("sales", 60), "voicemail", "After the tone."),
        "4": (Callback("billing", "+15550001", 4, {}), "callback", "We will call you."),
        "5": (Hangup("done"), "hangup", "Goodbye."),
    }
    for digit, (action, outcome, prompt) in expected.items():
        s = Session(TERMINALS, caller=caller)
        s.feed(Digit(digit))
        assert s.last == action
        assert s.said[-1] == prompt
        assert s.interpreter.outcome == outcome
        assert s.interpreter.trace["handoff"]["action"] == type(action).__name__.lower()


SURVEY = """
dialog: t
start: csat
nodes:
  csat:
    type: survey
    name: post_call
    intro: Please answer three questions.
    questions:
      - {id: score, kind: scale, min: 1, max: 5, prompt: "Rate us from 1 to 5."}
      - {id: why, kind: text, prompt: "What went wrong?", when: csat.score <= 2}
      - id: again
        kind: choice
        prompt: Would you call again?
        choices:
          - {value: yes, digit: "1", phrases: [yes, sure]}
          - {value: no, digit: "2", phrases: [no]}
    no_input: {retries: 1, fallback: thanks}
    no_match: {retries: 1, prompts: ["Please answer with a number from 1 to 5."], fallback: thanks}
    next: thanks
  thanks: {type: hangup, prompt: "Thanks, you gave {{ csat.score ?? 'no score' }}"}
"""


def test_survey_branches_on_earlier_answers_and_emits_answers() -> None:
    s = Session(SURVEY)
    assert s.said == ["Please answer three questions.", "Rate us from 1 to 5."]
    s.feed(Digit("9"))
    assert s.said[-1] == "Please answer with a number from 1 to 5."
    s.feed(Utterance("two"))
    assert s.said[-1] == "What went wrong?"
    s.feed(Utterance("too long on hold"), Utterance("sure"))
    answers = [a for a in s.actions if isinstance(a, SurveyAnswer)]
    assert [(a.survey, a.question, a.value) for a in answers] == [
        ("post_call", "score", 2),
        ("post_call", "why", "too long on hold"),
        ("post_call", "again", "yes"),
    ]
    assert s.said[-1] == "Thanks, you gave 2"
    assert s.interpreter.trace["survey"][0] == {
        "survey": "post_call",
        "question": "score",
        "value": 2,
    }


def test_survey_skips_a_question_whose_condition_is_false() -> None:
    s = Session(SURVEY)
    s.feed(Digit("5"))
    assert s.said[-1] == "Would you call again?"
    s.feed(Digit("2"))
    assert s.vars["csat"] == {"score": 5, "again": "no"}


def test_survey_gives_up_to_the_fallback() -> None:
    s = Session(SURVEY)
    s.feed(NoInput(), NoInput())
    assert s.said[-1] == "Thanks, you gave no score"


def test_step_limit_ends_an_endless_loop() -> None:
    s = Session(
        """
dialog: t
start: a
variables: {n: 0}
nodes:
  a: {type: set, values: {n: n + 1}, next: b}
  b: {type: goto, target: a}
""",
        step_limit=50,
    )
    assert s.interpreter.done and s.interpreter.outcome == "step_limit"
    assert s.interpreter.steps == 50
    assert s.last == Hangup("step limit")


def test_endless_retries_also_hit_the_step_limit() -> None:
    s = Session(MENU.replace("fallback: operator", "fallback: main"), step_limit=30)
    for _ in range(100):
        s.feed(NoInput())
    assert s.interpreter.outcome == "step_limit"
    assert s.interpreter.steps <= 30


def test_expression_error_goes_to_on_error_with_a_clear_message() -> None:
    s = Session("""
dialog: t
start: a
on_error: sorry
nodes:
  a:
    type: branch
    cases: [{when: balanse > 0, next: b}]
    else: b
  b: {type: hangup}
  sorry: {type: transfer, number: "+15550000"}
""")
    assert s.last == Transfer("+15550000")
    errors = s.interpreter.trace["errors"]
    assert errors == ["test.yaml:8: node 'a': unknown variable 'balanse' in `balanse > 0`"]


def test_type_error_without_on_error_ends_the_session() -> None:
    s = Session("""
dialog: t
start: a
nodes:
  a: {type: say, text: "{{ 'total ' + 3 }}", next: b}
  b: {type: hangup}
""")
    assert s.interpreter.outcome == "error"
    assert "cannot add text 'total ' and number 3" in s.interpreter.trace["errors"][0]


def test_caller_hang_up_and_events_after_the_end_are_recorded_not_raised() -> None:
    s = Session(MENU)
    s.feed(HangUp())
    assert s.interpreter.done and s.interpreter.outcome == "caller_hangup"
    assert s.feed(Digit("1"), LookupResult(200, {})) == []
    kinds = [i["event"] for i in s.interpreter.trace["inputs"]]
    assert kinds == ["hangup", "ignored", "ignored"]


def test_unexpected_events_while_waiting_are_ignored() -> None:
    s = Session(LOOKUP)
    s.feed(Digit("1"), Utterance("hello"), NoInput())
    assert s.interpreter.waiting_for == "lookup"
    s = Session(MENU)
    s.feed(LookupResult(200, {}))
    assert s.interpreter.waiting_for == "input"


def test_trace_is_json_and_records_path_inputs_and_variables() -> None:
    s = Session(MENU)
    s.feed(Utterance("help"))
    trace = json.loads(json.dumps(s.interpreter.trace))
    assert trace["nodes"] == ["main", "support"]
    assert trace["inputs"] == [
        {"node": "main", "event": "speech", "value": {"text": "help", "confidence": 1.0}}
    ]
    assert trace["outcome"] == "queued"
    assert trace["handoff"] == {
        "action": "queue",
        "name": "support",
        "priority": 0,
        "skills": [],
        "data": {},
    }


def test_return_at_the_top_level_completes_the_dialog() -> None:
    s = Session("""
dialog: t
start: a
nodes:
  a: {type: return, values: {done: "true"}}
""")
    assert s.interpreter.outcome == "completed"
    assert s.last == Hangup("completed")
    assert s.vars["done"] is True


def test_a_flood_of_ignored_events_does_not_grow_the_trace_without_bound() -> None:
    s = Session(LOOKUP)
    s.feed(*[Digit("1")] * 5000)
    inputs = s.interpreter.trace["inputs"]
    assert len(inputs) == 500
    assert inputs[-1]["event"] == "truncated"
    assert s.interpreter.waiting_for == "lookup"


def test_keys_then_silence_end_the_entry_like_an_inter_digit_timeout() -> None:
    s = Session(ask("digits", "    min_length: 3\n    max_length: 8"))
    s.feed(Digit("5"), Digit("5"), Digit("5"), NoInput())
    assert s.vars["answer"] == "555"
    assert [i["event"] for i in s.interpreter.trace["inputs"]] == ["digits"]


def test_unicode_digits_that_are_not_numbers_are_a_no_match_not_a_crash() -> None:
    # Found by hypothesis: "¹".isdigit() is true but int("¹") fails.
    s = Session(SURVEY)
    s.feed(Digits("¹"))
    assert s.said[-1] == "Please answer with a number from 1 to 5."
    s = Session(ask("digits"))
    s.feed(Utterance("¹ ²"))
    assert s.said[-1] == "Again please."
    assert s.interpreter.trace["errors"] == []


def test_prompts_of_input_nodes_allow_barge_in_and_hints_follow_the_language() -> None:
    source = """
dialog: t
languages: [en, es]
start: hello
nodes:
  hello: {type: say, text: {en: Hi, es: Hola}, next: menu}
  menu:
    type: menu
    prompt: {en: Say balance, es: Diga saldo}
    options:
      - {digit: "1", phrases: {en: [balance], es: [saldo]}, next: done}
    no_input: {retries: 0, fallback: done}
    no_match: {retries: 0, fallback: done}
  done: {type: hangup}
"""
    s = Session(source, caller={"language": "es"})
    hello, prompt, listen = s.actions
    assert isinstance(hello, Say) and not hello.barge_in
    assert isinstance(prompt, Say) and prompt.barge_in and prompt.text == "Diga saldo"
    assert isinstance(listen, Listen) and listen.hints == ("saldo",) and listen.lang == "es"
    s.feed(Utterance("mi saldo por favor"))
    assert s.interpreter.outcome == "hangup"
    s = Session(source)
    assert isinstance(s.last, Listen) and s.last.hints == ("balance",)


def test_a_session_can_start_at_a_node_an_agent_sends_the_caller_to() -> None:
    """Back to self-service: the PIN step alone, its variables as the result."""
    source = """
    dialog: checks
    languages: [en]
    start: welcome
    variables: {pin: ""}
    nodes:
      welcome:
        type: say
        text: Welcome
        next: pin
      pin:
        type: ask
        expect: digits
        var: pin
        min_length: 4
        max_length: 4
        prompt: Your PIN, please.
        no_input: {retries: 0, fallback: done}
        no_match: {retries: 0, fallback: done}
        next: done
      done:
        type: return
    """
    session = Session(source, start_at="pin")
    assert session.said == ["Your PIN, please."]
    session.feed(Digits("4321"))
    trace = session.interpreter.trace
    assert trace["nodes"] == ["pin", "done"]
    assert trace["outcome"] == "completed"
    assert trace["variables"]["pin"] == "4321"


def test_starting_at_a_node_the_main_flow_lacks_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="no node 'nowhere'"):
        Session(SAY, start_at="nowhere")
