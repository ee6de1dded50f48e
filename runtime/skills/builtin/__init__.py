"""The built-in skill `@perstack/base`: file, exec, todo and completion tools, in-process."""

from runtime.skills.builtin.skill import BUILTIN_SKILL_NAME, BuiltinSkill
from runtime.skills.builtin.todo import TodoItem

__all__ = ["BUILTIN_SKILL_NAME", "BuiltinSkill", "TodoItem"]
