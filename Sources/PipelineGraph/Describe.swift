/// Texts generated from the registry and from built pipelines: the stage list, the JSON Schema
/// and the graph in DOT and Mermaid.
public enum Describe {
    /// `ganflow stages`: every type with its configuration keys, defaults and docs.
    public static func stageList(_ registry: StageRegistry) -> String {
        var out = ""
        for name in registry.sortedNames {
            let t = registry[name]!
            out += "\(name)\n    \(t.summary)\n"
            for k in t.configKeys {
                let d = k.defaultValue.map { "default \($0.serialized(indent: nil))" } ?? "required"
                out += "    \(k.name): \(k.type.summary) (\(d)) - \(k.doc)\n"
            }
        }
        out += "\nEvery stage also accepts:\n"
        for k in CommonKeys.all {
            out += "    \(k.name): \(k.type.summary) (default \(k.defaultValue!.serialized(indent: nil))) - \(k.doc)\n"
        }
        return out
    }

    /// `ganflow schema`: a JSON Schema (draft 2020-12) for pipeline files, from the registry.
    public static func jsonSchema(_ registry: StageRegistry) -> JSONValue {
        var variants: [JSONValue] = []
        for name in registry.sortedNames {
            let t = registry[name]!
            let keys = StageRegistry.allKeys(of: t)
            var props: [(String, JSONValue)] = [("type", .object([("const", .string(name))]))]
            for k in keys {
                var schema = k.type.jsonSchema.objectEntries ?? []
                schema.append(("description", .string(k.doc)))
                if let d = k.defaultValue, d != .null { schema.append(("default", d)) }
                props.append((k.name, .object(schema)))
            }
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
        let count: JSONValue = .object([("type", .string("integer")), ("minimum", .number(1))])
        return .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("title", .string("GANFlow pipeline")),
            ("type", .string("object")),
            ("properties", .object([
                ("$schema", .object([("type", .string("string"))])),
                ("name", .object([("type", .string("string")), ("minLength", .number(1))])),
                ("description", .object([("type", .string("string"))])),
                ("seed", .object([("type", .string("integer")), ("minimum", .number(0))])),
                ("steps", count),
                ("epochs", count),
                ("output", .object([("type", .string("string"))])),
                ("checkpoint", .object([("type", .string("object")), ("properties", .object([("every", count), ("keep", count)])),
                                        ("additionalProperties", .bool(false))])),
                ("log", .object([("type", .string("object")), ("properties", .object([("every", count)])),
                                 ("additionalProperties", .bool(false))])),
                ("stages", .object([("type", .string("object")), ("additionalProperties", stage)])),
                ("schedule", .object([
                    ("type", .string("array")), ("minItems", .number(1)),
                    ("items", .object([
                        ("type", .string("object")),
                        ("properties", .object([
                            ("run", .object([("type", .string("array")), ("items", .object([("type", .string("string"))]))])),
                            ("repeat", count),
                        ])),
                        ("required", .array([.string("run")])),
                        ("additionalProperties", .bool(false)),
                    ])),
                ])),
            ])),
            ("required", .array(["name", "stages", "schedule"].map(JSONValue.string))),
            ("additionalProperties", .bool(false)),
        ])
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
