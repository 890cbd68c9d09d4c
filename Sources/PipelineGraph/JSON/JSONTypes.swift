// The JSON reader (JSONParser, JSONValue, JSONPath) lives in TensorRuntime, which reads
// safetensors headers with it too. PipelineGraph re-exports TensorRuntime: its API is made of
// TensorRuntime's types (tensors, communicators, JSON values), so a client of the pipeline core
// sees them without a second import, as NIOPosix's clients see NIOCore.
@_exported import TensorRuntime

/// Where a value starts in a pipeline file (1-based line and column).
public typealias SourceLocation = JSONSourceLocation
