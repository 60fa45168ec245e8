"""Filling a canned response's variables: known ones only, one pass, no template engine."""

from __future__ import annotations

from hub.canned import fill, unknown_variables, values_for


def test_known_variables_are_filled_and_others_stay_as_written():
    values = values_for(
        customer="Nora Quinn", agent="Alice Martin", queue="General", interaction_id=42
    )
    text = "Hi {{customer.first_name}}, {{ agent.name }} ({{queue.name}}) #{{interaction.id}}"
    assert fill(text, values) == "Hi Nora, Alice Martin (General) #42"
    assert fill("{{customer.age}} {{ x }} {% if 1 %}{{7*7}}", values) == (
        "{{customer.age}} {{ x }} {% if 1 %}{{7*7}}"
    )
    assert unknown_variables("{{customer.age}} {{customer.name}} {{ x }}") == [
        "customer.age",
        "x",
    ]


def test_a_value_is_never_expanded_again_and_an_empty_value_stays_visible():
    values = values_for(customer="{{agent.name}}", agent="Alice", queue=None, interaction_id=None)
    assert fill("To {{customer.name}} from {{agent.name}}", values) == (
        "To {{agent.name}} from Alice"
    )
    empty = values_for(customer="  ", agent="Alice", queue=None, interaction_id=None)
    assert fill("Dear {{customer.name}} in {{queue.name}}", empty) == (
        "Dear {{customer.name}} in {{queue.name}}"
    )
