"""Schemathesis hooks for Switchboard: how to generate the bodies that are
not JSON. A plugin upload (`application/wasm`): mostly not a component, and
sometimes the component-model header followed by garbage, so both the cheap
checks and the compiler's are reached. A media upload (`application/pdf`,
the type its document names): a PDF's header and some bytes, or anything."""

from hypothesis import strategies as st

import schemathesis

COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"

schemathesis.openapi.media_type(
    "application/wasm",
    st.one_of(st.binary(max_size=256), st.binary(max_size=256).map(lambda tail: COMPONENT_HEADER + tail)),
)

schemathesis.openapi.media_type(
    "application/pdf",
    st.one_of(st.binary(max_size=256), st.binary(max_size=256).map(lambda tail: b"%PDF-1.7\n" + tail)),
)
