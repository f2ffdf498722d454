"""A Switchboard router in Python, componentized with componentize-py.

Refund requests go to the billing team within 30 minutes; greetings get a
bot reply; everything else goes to support. Build (see README.md):

    componentize-py -d ../../wit/v0.1.0 -w router componentize app -o router.wasm --stub-wasi
"""

from wit_world import exports
from wit_world.exports import routing
from wit_world.imports import types
from wit_world.imports.host import config


class Routing(exports.Routing):
    def route(self, input: routing.Input) -> routing.Decision:
        text = (input.message.text or "").lower()
        billing = config("billing-team") or "billing"
        if "refund" in text or "reembolso" in text:
            return routing.Decision(
                needs_reply=True,
                handler=routing.Handler_Human(types.Assignee_Team(billing)),
                acknowledge=None,
                priority=types.Priority.HIGH,
                respond_within=30 * 60_000,
                tags=["refund"],
                reason="refund request",
            )
        if text.strip() in ("hi", "hello", "oi", "olá", "hola"):
            return routing.Decision(
                needs_reply=True,
                handler=routing.Handler_Bot(routing.Reply_Text("Hi! How can we help?")),
                acknowledge=None,
                priority=types.Priority.NORMAL,
                respond_within=None,
                tags=[],
                reason="a greeting",
            )
        return routing.Decision(
            needs_reply=True,
            handler=routing.Handler_Human(types.Assignee_Team("support")),
            acknowledge=None,
            priority=types.Priority.NORMAL,
            respond_within=4 * 60 * 60_000,
            tags=[],
            reason="support answers",
        )
