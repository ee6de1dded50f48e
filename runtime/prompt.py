"""The instruction message: how the runtime works, then the Expert's own instruction, the
skills' rules and the delegates."""

from __future__ import annotations

from datetime import UTC, datetime

from runtime.config import ExpertConfig, InteractiveSkill, SkillConfig
from runtime.messages import InstructionMessage, TextPart

_PREAMBLE = """\
You are an Expert run by Perstack: you do the task a user gives you by calling tools.

How the run works:
- Each of your turns either calls tools or ends the run. A reply with no tool call is taken \
as your final answer and ends the run.
- Tool results come back in the next turn. Look at them before deciding the next call.
- When the task is done, out of your expertise, or impossible to understand, call \
attemptCompletion alone, with no text. If todos are still open it returns them and the run \
goes on; otherwise you will be asked for the final answer in a separate turn.
"""


def build_instruction(
    expert_key: str,
    expert: ExpertConfig,
    *,
    delegate_descriptions: dict[str, str],
    workspace_label: str,
    now: datetime | None = None,
) -> InstructionMessage:
    moment = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    sections = [
        _PREAMBLE,
        f"Environment:\n- Current time: {moment}\n- Working directory: {workspace_label}\n",
        f"Your task as the Expert {expert_key!r}:\n\n{expert.instruction.strip()}\n",
    ]
    rules = _skill_rules(expert.effective_skills())
    if rules:
        sections.append("Rules of your skills:\n" + rules)
    if delegate_descriptions:
        lines = "\n".join(
            f"- {key}: {description}" for key, description in delegate_descriptions.items()
        )
        sections.append(
            "You can hand a sub-task to another Expert by calling the tool named after it "
            "with a `query`:\n" + lines + "\n"
        )
    return InstructionMessage(contents=[TextPart(text="\n".join(sections))], cache=True)


def _skill_rules(skills: dict[str, SkillConfig]) -> str:
    lines = []
    for name, skill in skills.items():
        if skill.rule:
            lines.append(f"- {name}: {skill.rule.strip()}")
        elif isinstance(skill, InteractiveSkill) and skill.description:
            lines.append(f"- {name}: {skill.description.strip()}")
    return "\n".join(lines) + ("\n" if lines else "")
