/// Texts generated from the registry and from built pipelines: the stage list, the JSON Schema
/// and the graph in DOT and Mermaid.
public enum Describe {
    /// `ganflow stages`: every type with its configuration keys, defaults and docs, then the keys
    /// every stage accepts and the top level of a pipeline file.
    public static func stageList(_ registry: StageRegistry) -> String {
        var out = ""
        for name in registry.sortedNames {
            let t = registry[name]!
            out += "\(name)\n    \(t.summary)\n"
            out += keyLines(t.configKeys, indent: 1)
        }
        out += "\nEvery stage also accepts:\n" + keyLines(CommonKeys.all, indent: 1)
        out += "\nThe top level of a pipeline file:\n" + keyLines(PipelineDocument.keys, indent: 1)
        return out
    }

    /// `name: type (default, required or optional) - doc`, one line per key, with the keys of
    /// nested objects (and of a list's objects) indented below theirs.
    static func keyLines(_ keys: [ConfigKey], indent: Int) -> String {
        var out = ""
        let pad = String(repeating: "    ", count: indent)
        for k in keys {
            let d = k.defaultValue.map { "default \($0.serialized(indent: nil))" } ?? (k.isRequired ? "required" : "optional")
            out += "\(pad)\(k.name): \(k.expected ?? k.type.summary) (\(d)) - \(k.doc)\n"
            out += keyLines(k.type.nestedKeys, indent: indent + 1)
        }
        return out
    }

    /// `ganflow schema`: a JSON Schema (draft 2020-12) for pipeline files, from the top level's
    /// declaration and the registry.
    public static func jsonSchema(_ registry: StageRegistry) -> JSONValue {
        let noStage = JSONValue.object([])
        var variants: [JSONValue] = []
        for name in registry.sortedNames {
            let t = registry[name]!
            let keys = StageRegistry.allKeys(of: t)
            let props: [(String, JSONValue)] = [("type", .object([("const", .string(name))]))]
                + keys.map { ($0.name, $0.jsonSchema(stage: noStage)) }
            let required = ["type"] + keys.filter(\.isRequired).map(\.name)
            variants.append(.object([
                ("if", .object([("properties", .object([("type", .object([("const", .string(name))]))]))])),
                ("then", .object([
                    ("description", .string(t.summary)),
                    ("properties", .object(props)),
                    ("required", .array(required.map(JSONValue.string))),
                    ("additionalProperties", .bool(false)),
                ])),
            ]))
        }
        let stage: JSONValue = .object([
            ("type", .string("object")),
            ("properties", .object([("type", .object([("enum", .array(registry.sortedNames.map(JSONValue.string)))]))])),
            ("required", .array([.string("type")])),
            ("allOf", .array(variants)),
        ])
        let document = ConfigType.object(PipelineDocument.keys).jsonSchema(stage: stage).objectEntries ?? []
        return .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("title", .string("GANFlow pipeline")),
        ] + document)
    }

    /// The DAG in Graphviz DOT: stages as boxes, wires labelled with their port types.
    public static func dot(_ p: Pipeline) -> String {
        var out = "digraph \"\(p.document.name)\" {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n"
        for id in p.order {
            let n = p.nodes[id]!
            out += "  \"\(id)\" [label=\"\(id)\\n\(n.config.typeName)\"];\n"
        }
        for id in p.order {
            let n = p.nodes[id]!
            for (port, w) in n.inputs.sorted(by: { $0.key < $1.key }) {
                let t = p.outputType(w).map { "\($0)" } ?? ""
                out += "  \"\(w.stage)\" -> \"\(id)\" [label=\"\(w.port) -> \(port)\\n\(t)\"];\n"
            }
            for r in n.references {
                out += "  \"\(id)\" -> \"\(r)\" [style=dashed, label=\"updates\"];\n"
            }
        }
        return out + "}\n"
    }

    /// The DAG as a Mermaid flowchart.
    public static func mermaid(_ p: Pipeline) -> String {
        var out = "flowchart LR\n"
        func node(_ id: String) -> String { "n_" + id.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined() }
        for id in p.order {
            out += "  \(node(id))[\"\(id)<br/>\(p.nodes[id]!.config.typeName)\"]\n"
        }
        for id in p.order {
            let n = p.nodes[id]!
            for (port, w) in n.inputs.sorted(by: { $0.key < $1.key }) {
                out += "  \(node(w.stage)) -- \"\(w.port) → \(port)\" --> \(node(id))\n"
            }
            for r in n.references { out += "  \(node(id)) -. updates .-> \(node(r))\n" }
        }
        return out
    }
}
