"""Schemathesis hooks for Switchboard: how to generate the one body that is
not JSON, a plugin upload (`application/wasm`). Mostly not a component, and
sometimes the component-model header followed by garbage, so both the cheap
checks and the compiler's are reached."""

from hypothesis import strategies as st

import schemathesis

COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"

schemathesis.openapi.media_type(
    "application/wasm",
    st.one_of(st.binary(max_size=256), st.binary(max_size=256).map(lambda tail: COMPONENT_HEADER + tail)),
)
