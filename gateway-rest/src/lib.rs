//! REST shim: browser JSON and the OpenAI-compatible API translated to gRPC (see issue 4).
