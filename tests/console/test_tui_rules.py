"""The rules screen (edit with the expression checked and the change previewed as you type, save, escape
reverting to the saved rule, create, activate and deactivate after a preview, delete) and approving or rejecting
changes the safeguard held, on the tasks screen; with snapshots."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from provtui.domain.errors import HeldForConfirmation
from provtui.domain.rules import RuleState
from provtui.service import Service
from provtui.tui.app import build_app
from provtui.tui.screens.modals import ChangeModal, ConfirmModal
from provtui.tui.screens.rules import RulesScreen
from provtui.tui.screens.tasks import TasksScreen
from provtui.tui.widgets.row_table import RowTable
from tests.helpers.console import NARROW, WIDE, keys, screen_text, settle

BERLIN = 'user.location == "Berlin"'


@pytest.fixture
def org(demo) -> Service:
    """The demo, plus a Berlin office group that gives GitHub, and two rules not active yet."""
    demo.create_group("berlin", "Berlin office")
    demo.assign("GitHub", group="berlin")
    demo.rules().create("berlin-office", groups=["berlin"], expr=BERLIN, exclude=[])
    demo.rules().create("vp-titles", groups=["sales"], expr='String.startsWith(user.title, "VP")', exclude=[])
    return demo


async def press(pilot, *pressed: str) -> None:
    for key in pressed:
        await pilot.press(key)
        await settle(pilot)


async def type_into(pilot, selector: str, text: str) -> None:
    """Replace a field's text, as typing would (each change is checked and previewed)."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = text
    await settle(pilot)


def rule(service: Service, name: str) -> dict:
    return next(r for r in service.rules().list() if r["name"] == name)


def line_with(app, text: str) -> int:
    lines = screen_text(app).splitlines()
    return next(i for i, line in enumerate(lines) if text in line)


async def test_edit_see_the_error_at_its_column_fix_it_preview_and_activate(org):
    app = build_app(org, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o")
        assert isinstance(app.screen, RulesScreen)
        assert "Rule berlin-office  inactive  0 members" in screen_text(app)
        await press(pilot, "e")
        assert app.focused is app.screen.query_one("#expr", Input)

        bad = 'user.location == == "Berlin"'
        await type_into(pilot, "#expr", bad)
        lines = screen_text(app).splitlines()
        row = line_with(app, bad)
        caret = lines[row + 1]
        assert caret.strip() == "^" and caret.index("^") == lines[row].index(bad) + bad.index("== ==") + 3
        assert "unexpected token '==' at column 18" in lines[row + 2]
        assert "Preview: fix the expression first" in screen_text(app)

        await type_into(pilot, "#expr", 'user.location == "Berlin" AND user.department != "Sales"')
        text = screen_text(app)
        assert not app.screen.query_one("#expr-error").display and "column" not in text
        assert "If saved and activated: 7 join · 0 leave · 5 gain access · 0 lose access" in text
        assert "aborg GitHub" in text and "aturing" not in text  # a Berlin sales engineer: excluded by the expression
        assert "edited: ctrl+s saves, esc reverts" in text
        assert rule(org, "berlin-office")["state"] == "inactive"  # a preview writes nothing

        await press(pilot, "ctrl+s")  # saves the expression; the rule stays inactive
        saved = rule(org, "berlin-office")
        assert saved["expr"] == 'user.location == "Berlin" AND user.department != "Sales"' and saved["state"] == "inactive"
        assert "If activated: 7 join" in screen_text(app) and "edited:" not in screen_text(app)

        await press(pilot, "ctrl+t", "y")  # activates the saved rule, after its preview
        activated = rule(org, "berlin-office")
        assert activated["state"] == "active" and activated["members"] == 7
        assert activated["expr"] == 'user.location == "Berlin" AND user.department != "Sales"'
        assert "berlin" in org.user_view("aborg")["groups"] and "berlin" not in org.user_view("aturing")["groups"]
        table = app.screen.query_one("#rules", RowTable)
        assert table.highlighted_row["state"] == "active" and table.highlighted_row["members"] == 7
        text = screen_text(app)
        assert "Rule berlin-office  active  7 members" in text
        assert "If saved: 0 join · 0 leave · 0 gain access · 0 lose access" in text

        await type_into(pilot, "#expr", BERLIN)  # an active rule: the preview is what saving would change
        assert "If saved: 2 join · 0 leave · 2 gain access" in screen_text(app)
        await press(pilot, "ctrl+s")
        assert rule(org, "berlin-office")["members"] == 9 and "berlin" in org.user_view("aturing")["groups"]
        org.set_config("safeguard.threshold", "1")  # else taking GitHub from 9 people is held (the test below)
        await press(pilot, "ctrl+t", "y")  # deactivate: everyone leaves
        deactivated = rule(org, "berlin-office")
        assert deactivated["state"] == "inactive" and deactivated["members"] == 0
        assert "Rule berlin-office  inactive  0 members" in screen_text(app)


async def test_create_a_rule_and_delete_it_after_confirmation(org):
    app = build_app(org, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "n")
        assert app.focused is app.screen.query_one("#name", Input)
        assert "New rule" in screen_text(app) and "Save the new rule to preview it" in screen_text(app)
        await type_into(pilot, "#name", "finance-controllers")
        await type_into(pilot, "#expr", 'user.title == "Controller"')
        await type_into(pilot, "#groups", "nowhere")
        await press(pilot, "ctrl+s")  # refused by the service: said, nothing written, the draft kept
        assert [r["name"] for r in org.rules().list()] == ["berlin-office", "vp-titles"]
        assert app.screen.query_one("#name", Input).value == "finance-controllers"
        await type_into(pilot, "#groups", "finance")
        await press(pilot, "ctrl+s")
        created = rule(org, "finance-controllers")
        assert created["state"] == "inactive" and created["groups"] == ["finance"]
        assert app.screen.query_one("#rules", RowTable).highlighted_row["name"] == "finance-controllers"
        assert "If activated: 2 join" in screen_text(app)

        await press(pilot, "x")
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "escape")
        assert "finance-controllers" in [r["name"] for r in org.rules().list()]
        await press(pilot, "x", "y")
        assert [r["name"] for r in org.rules().list()] == ["berlin-office", "vp-titles"]
        assert app.screen.query_one("#rules", RowTable).highlighted_row["name"] == "berlin-office"


async def test_the_palette_finds_a_rule_by_name(org):
    app = build_app(org, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_rule("vp-titles")
        await settle(pilot)
        assert isinstance(app.screen, RulesScreen)
        assert app.screen.query_one("#expr", Input).value == 'String.startsWith(user.title, "VP")'
        await press(pilot, "ctrl+p")
        app.screen.query_one(Input).insert_text_at_cursor("berlin-off")
        await settle(pilot)
        await press(pilot, "enter")
        assert isinstance(app.screen, RulesScreen) and app.screen.editing == "berlin-office"


async def test_a_held_change_is_said_then_rejected_and_approved_on_the_tasks_screen(org):
    org.set_config("safeguard.threshold", "0.01")
    org.rules().change("berlin-office", state=RuleState.ACTIVE)
    app = build_app(org, label="demo")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "o")
        await type_into(pilot, "#expr", 'user.location == "Nowhere"')
        assert "If saved: 0 join · 9 leave · 0 gain access · 7 lose access" in screen_text(app)
        await press(pilot, "ctrl+s")
        [held] = org.rules().held()
        assert held["state"] == "held" and rule(org, "berlin-office")["members"] == 9  # held, not applied
        assert f"Held ({held['id']}) for approval: 7 would lose access · see Tasks (t)" in screen_text(app)

        await press(pilot, "escape")  # the held edit is not saved: discard it from the editor (it waits in Tasks)
        assert isinstance(app.screen, ConfirmModal) and "has edits not saved" in screen_text(app)
        await press(pilot, "y", "t")
        assert rule(org, "berlin-office")["expr"] == BERLIN
        assert isinstance(app.screen, TasksScreen)
        text = screen_text(app)
        assert "Held changes (1)" in text and "berlin-office" in text and "9 leave, 7 lose access" in text
        await press(pilot, "R")
        assert isinstance(app.screen, ConfirmModal) and "GitHub: 7 of" not in screen_text(app)
        await press(pilot, "escape")
        assert org.rules().held()[0]["state"] == "held"
        await press(pilot, "R", "y")
        assert org.rules().held()[0]["state"] == "rejected" and rule(org, "berlin-office")["expr"] == BERLIN
        assert "No changes held" in screen_text(app) or "Held changes (0)" in screen_text(app)

        await press(pilot, "o", "ctrl+t")  # deactivating takes GitHub from the Berlin people: held too
        assert isinstance(app.screen, ChangeModal)
        text = screen_text(app)
        assert "Above the safeguard" in text and "GitHub: 7 of" in text and "Hold for approval (y)" in text
        await press(pilot, "y")
        assert rule(org, "berlin-office")["state"] == "active"
        [_, held] = org.rules().held()
        assert held["state"] == "held" and held["change"] == {"state": "inactive"}
        assert f"Held ({held['id']}) for approval: 7 would lose access" in screen_text(app)
        await press(pilot, "t", "A")
        assert isinstance(app.screen, ConfirmModal) and "GitHub: 7 of" in screen_text(app)
        await press(pilot, "y")
        assert [h["state"] for h in org.rules().held()] == ["rejected", "approved"]
        assert rule(org, "berlin-office")["state"] == "inactive" and rule(org, "berlin-office")["members"] == 0
        assert "berlin" not in org.user_view("aborg")["groups"]


async def test_escape_after_an_edit_asks_then_reverts_and_ctrl_t_acts_on_the_saved_rule(org):
    """Issue #14: an abandoned expression was what deactivating wrote."""
    org.rules().change("berlin-office", state=RuleState.ACTIVE)
    org.set_config("safeguard.threshold", "1")
    seq = org.store.seq
    app = build_app(org, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "e")
        screen = app.screen
        await type_into(pilot, "#expr", 'user.location == == "Nowhere"')  # an invalid draft
        await press(pilot, "escape")
        assert isinstance(app.screen, ConfirmModal)
        text = screen_text(app)
        assert "Rule berlin-office has edits not saved" in text
        assert f"Expression saved: {BERLIN}" in text and 'Expression edited: user.location == == "Nowhere"' in text
        await press(pilot, "escape")  # cancel: the draft stays, to go on editing
        assert app.screen is screen and screen.query_one("#expr", Input).value == 'user.location == == "Nowhere"'
        assert app.focused is screen.query_one("#expr", Input)

        await press(pilot, "escape", "y")  # discard: the saved rule is back in the editor, the list focused
        assert app.screen is screen and screen.query_one("#expr", Input).value == BERLIN
        assert app.focused is screen.query_one("#rules", RowTable)
        text = screen_text(app)
        assert "column" not in text and "edited:" not in text and "If saved: 0 join · 0 leave" in text
        assert org.store.seq == seq  # nothing written

        await press(pilot, "ctrl+t")  # deactivate: the saved rule, not the abandoned draft
        assert isinstance(app.screen, ChangeModal) and "0 join · 9 leave · 0 gain access · 7 lose access" in screen_text(app)
        await press(pilot, "y")
        deactivated = rule(org, "berlin-office")
        assert deactivated["state"] == "inactive" and deactivated["expr"] == BERLIN and deactivated["members"] == 0


async def test_ctrl_t_with_unsaved_edits_says_they_are_left_out_and_leaves_them_unsaved(org):
    app = build_app(org, label="demo")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "e")
        await type_into(pilot, "#expr", 'user.location == "Nowhere"')
        await press(pilot, "ctrl+t")
        assert isinstance(app.screen, ChangeModal)
        text = screen_text(app)
        assert "9 join · 0 leave · 7 gain access" in text  # the saved rule's activation, not the draft's (0 join)
        assert "Your unsaved edits are not part of this" in text
        await press(pilot, "y")
        activated = rule(org, "berlin-office")
        assert activated["state"] == "active" and activated["expr"] == BERLIN and activated["members"] == 9
        assert app.screen.query_one("#expr", Input).value == 'user.location == "Nowhere"'  # still a draft
        assert "edited: ctrl+s saves" in screen_text(app)


async def test_escape_without_edits_just_leaves_and_save_without_edits_writes_nothing(org):
    seq = org.store.seq
    app = build_app(org, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "e")
        screen = app.screen
        await type_into(pilot, "#expr", 'user.location == "Paris"')
        await type_into(pilot, "#expr", BERLIN)  # typed back to what is saved: no edits
        await press(pilot, "ctrl+s")
        assert org.store.seq == seq
        await press(pilot, "escape")
        assert app.screen is screen and app.focused is screen.query_one("#rules", RowTable)
        await press(pilot, "escape")  # from the list: nowhere (a top-level screen); the screens are a key away
        assert app.screen is screen
        assert org.store.seq == seq


async def test_escape_on_a_new_rule_asks_before_dropping_it(org):
    app = build_app(org, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "n", "escape")  # nothing typed: dropped at once
        screen = app.screen
        assert app.screen is screen and not screen.drafting and screen.editing == "berlin-office"
        await press(pilot, "n")
        await type_into(pilot, "#name", "finance-controllers")
        await press(pilot, "escape")
        assert isinstance(app.screen, ConfirmModal) and "It has not been created" in screen_text(app)
        await press(pilot, "escape")
        assert screen.drafting and screen.query_one("#name", Input).value == "finance-controllers"
        await press(pilot, "escape", "y")
        assert not screen.drafting and screen.editing == "berlin-office"
        assert [r["name"] for r in org.rules().list()] == ["berlin-office", "vp-titles"]


async def test_activating_shows_who_joins_and_gains_cancel_changes_nothing_confirm_applies(org):
    seq = org.store.seq
    app = build_app(org, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "ctrl+t")
        assert isinstance(app.screen, ChangeModal)
        text = screen_text(app)
        assert "Activate rule berlin-office" in text and "puts who matches it in berlin" in text
        assert "9 join · 0 leave · 7 gain access · 0 lose access" in text
        assert "Join (9)" in text and "Leave (0)" in text and "Gain access (7)" in text and "Lose access (0)" in text
        assert "aborg" in text and "aborg GitHub" in text and "Above the safeguard" not in text
        await press(pilot, "pagedown")  # the lists scroll; the focus stays on the confirm button
        assert app.screen.query_one("#columns").scroll_y > 0 and app.focused.id == "confirm"
        await press(pilot, "escape")
        assert isinstance(app.screen, RulesScreen) and org.store.seq == seq and rule(org, "berlin-office")["state"] == "inactive"

        await press(pilot, "ctrl+t", "n")
        assert org.store.seq == seq
        await press(pilot, "ctrl+t", "y")
        activated = rule(org, "berlin-office")
        assert activated["state"] == "active" and activated["members"] == 9
        assert "Rule berlin-office  active  9 members" in screen_text(app)


async def test_deactivating_above_the_safeguard_ends_held_and_the_screen_says_so(org):
    org.rules().change("berlin-office", state=RuleState.ACTIVE)
    app = build_app(org, label="demo")  # the default threshold (20%): taking GitHub from 7 of 12 is held
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "ctrl+t")
        assert isinstance(app.screen, ChangeModal)
        text = screen_text(app)
        assert "Deactivate rule berlin-office" in text and "0 join · 9 leave · 0 gain access · 7 lose access" in text
        assert "Above the safeguard" in text and "more than 20%" in text and "Hold for approval (y)" in text
        await press(pilot, "y")
        [held] = org.rules().held()
        assert held["state"] == "held" and held["change"] == {"state": "inactive"}  # as `rule deactivate` (exit 3)
        assert rule(org, "berlin-office")["state"] == "active" and rule(org, "berlin-office")["members"] == 9
        assert f"Held ({held['id']}) for approval: 7 would lose access · see Tasks (t)" in screen_text(app)


async def test_deleting_an_active_rule_above_the_safeguard_ends_held_and_the_rule_stays(org):
    org.rules().change("berlin-office", state=RuleState.ACTIVE)
    app = build_app(org, label="demo")  # deleting takes GitHub from 7 of 12: judged as the rule's deactivation
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "x", "y")
        [held] = org.rules().held()
        assert held["state"] == "held"
        assert rule(org, "berlin-office")["state"] == "active" and rule(org, "berlin-office")["members"] == 9
        assert f"Held ({held['id']}) for approval: 7 would lose access · see Tasks (t)" in screen_text(app)
        assert "deleted" not in screen_text(app)


async def test_approving_is_greyed_out_for_who_may_not(org):
    org.set_config("safeguard.threshold", "0.01")
    org.rules().change("berlin-office", state=RuleState.ACTIVE)
    with pytest.raises(HeldForConfirmation):
        org.rules().change("berlin-office", state=RuleState.INACTIVE)
    org.grant("helper", "group-admin", groups=["berlin"])
    helper = Service.open(org.location, actor="helper")
    app = build_app(helper, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "t")
        screen = app.screen
        assert screen.check_action("decide", (True,)) is None  # shown, greyed
        await press(pilot, "o")
        rules = app.screen
        assert rules.check_action("set_state", ("inactive",)) is True  # berlin is theirs
        await press(pilot, "down")  # vp-titles targets sales: not theirs
        assert rules.editing == "vp-titles" and rules.check_action("save", ()) is None


# -- snapshots --------------------------------------------------------------------------------------


def snap(snap_compare, service, size, *pressed: str) -> bool:
    return snap_compare(build_app(service, label="demo"), terminal_size=size, run_before=keys("o", *pressed))


def test_rules_80x24(snap_compare, org):
    assert snap(snap_compare, org, NARROW)


def test_rules_120x40(snap_compare, org):
    assert snap(snap_compare, org, WIDE)


def test_rules_error_80x24(snap_compare, org):
    assert snap(snap_compare, org, NARROW, "e", "end", '= == "x"')


def test_rules_error_120x40(snap_compare, org):
    assert snap(snap_compare, org, WIDE, "e", "end", '= == "x"')


def test_rules_activate_dialog_80x24(snap_compare, org):
    assert snap(snap_compare, org, NARROW, "ctrl+t")


def test_rules_deactivate_held_dialog_80x24(snap_compare, org):
    org.rules().change("berlin-office", state=RuleState.ACTIVE)
    assert snap(snap_compare, org, NARROW, "ctrl+t")


def test_rules_discard_dialog_80x24(snap_compare, org):
    assert snap(snap_compare, org, NARROW, "e", "end", '= AND user.title == "VP"', "escape")


async def test_an_attribute_nobody_has_is_warned_of_as_you_type(org):
    app = build_app(org, label="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "o", "e")
        await type_into(pilot, "#expr", 'user.departmnt == "Engineering"')
        await settle(pilot)
        assert "warning: no profile has attribute departmnt; did you mean department?" in screen_text(app)
        await type_into(pilot, "#expr", 'user.department == "Engineering"')
        await settle(pilot)
        assert "no profile has attribute" not in screen_text(app)
