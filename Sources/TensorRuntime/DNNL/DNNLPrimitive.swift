import CDNNL

/// A created oneDNN primitive together with the reorders between our plain tensors and the
/// layouts the primitive chose.
///
/// Immutable after creation, so one instance is shared by every thread that runs the same op;
/// `execute` creates its memory objects, blocked temporaries and scratchpad per call.
final class DNNLPrimitive: @unchecked Sendable {
    /// One execution argument: the layout our tensor has and the one the primitive wants.
    struct Argument {
        let id: Int32
        let user: dnnl_memory_desc_t
        let chosen: dnnl_memory_desc_t
        /// User to chosen layout for inputs, chosen to user layout for outputs; nil when equal.
        let reorder: Reorder?
        let isOutput: Bool
        let chosenBytes: Int
    }

    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    let arguments: [Argument]
    let scratchpadBytes: Int
    /// oneDNN's name for the implementation it picked, e.g. `brg:avx512_core_amx`.
    let implementation: String
    /// The OpenMP thread count at creation, which oneDNN's work split assumes; `execute` runs
    /// with it.
    let threads: Int

    /// Takes ownership of `descriptor`. `arguments` lists (argument id, our layout, is output).
    init(descriptor: dnnl_primitive_desc_t, arguments specs: [(Int32, dnnl_memory_desc_t, Bool)]) throws {
        self.descriptor = descriptor
        var made: dnnl_primitive_t?
        do {
            try DNNLContext.check(dnnl_primitive_create(&made, descriptor), "primitive_create")
        } catch {
            dnnl_primitive_desc_destroy(descriptor)
            throw error
        }
        primitive = made!
        threads = Int(omp_get_max_threads())
        implementation = DNNLPrimitive.implementationName(descriptor)
        scratchpadBytes = DNNLPrimitive.scratchpadSize(descriptor)
        var args: [Argument] = []
        for (id, user, isOutput) in specs {
            guard let chosenPointer = dnnl_primitive_desc_query_md(descriptor, dnnl_query_exec_arg_md, id) else {
                throw TensorError("oneDNN: no memory descriptor for argument \(id)")
            }
            var chosen = chosenPointer.pointee
            var userCopy = user
            var reorder: Reorder?
            if dnnl_memory_desc_equal(&userCopy, &chosen) == 0 {
                let bytes = dnnl_memory_desc_get_size(&chosen)
                reorder = try Runtime.withOpenMPThreads(bytes < Runtime.singleThreadReorderBytes ? 1 : threads) {
                    isOutput ? try Reorder(from: chosen, to: user) : try Reorder(from: user, to: chosen)
                }
            }
            args.append(Argument(id: id, user: user, chosen: chosen, reorder: reorder, isOutput: isOutput,
                                 chosenBytes: dnnl_memory_desc_get_size(&chosen)))
        }
        arguments = args
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    /// Runs the primitive on plain buffers, one per argument id given at creation.
    ///
    /// Inputs are reordered into the chosen layouts first and outputs back afterwards.
    ///
    /// With the profiler on, the kernel is recorded as `label` (with `flops`) and each reorder as
    /// `reorder <label> <argument>`.
    ///
    /// `prepared` may give, per input argument, the data already in some layout (a copy made by an
    /// earlier execution); when that is the layout this primitive chose, it is used as is and the
    /// reorder is skipped. Returns the copies this call made of its inputs in the chosen layouts,
    /// so that a later primitive reading the same tensor can skip its reorder too, and those of
    /// its outputs before they were reordered to plain ones.
    ///
    /// `sources` may give, per input argument, the data in another layout of the argument's
    /// dimensions and element type (such as a bf16 copy in a kernel's blocked layout, seen
    /// through permuted axes) to reorder from instead of the plain buffer: the same values,
    /// fewer bytes read, when the plain buffer is f32 and the kernel reads bf16.
    @discardableResult
    func execute(
        _ buffers: [Int32: UnsafeMutablePointer<Float>], prepared: [Int32: LayoutCopy] = [:],
        sources: [Int32: LayoutCopy] = [:], label: String = "dnnl", flops: Double = 0
    ) throws -> [Int32: LayoutCopy] {
        try Runtime.withOpenMPThreads(threads) {
            try executeWithCurrentThreads(buffers, prepared: prepared, sources: sources, label: label, flops: flops)
        }
    }

    /// Reorders into an argument's chosen layout from layouts other than the plain one (`sources`),
    /// made on first use: (argument, source layout, reorder).
    private let sourceReorders = Locked<[(Int32, LayoutCopy, Reorder)]>([])

    /// The reorder from `source`'s layout into argument `arg`'s chosen one, or nil (reorder from
    /// the plain buffer then) when `source` has other dimensions or another element type (a bf16
    /// copy must not feed an f32 kernel), or oneDNN has no reorder between the two.
    private func reorder(from source: LayoutCopy, into arg: Argument) -> Reorder? {
        guard source.descriptor.data_type == arg.chosen.data_type, source.hasDimensions(of: arg.chosen) else { return nil }
        if let hit = sourceReorders.withLock({ list in list.first { $0.0 == arg.id && $0.1.matches(source.descriptor) }?.2 }) {
            return hit
        }
        guard let made = try? Runtime.withOpenMPThreads(threads, { try Reorder(from: source.descriptor, to: arg.chosen) }) else { return nil }
        sourceReorders.withLock { $0.append((arg.id, source, made)) }
        return made
    }

    private func executeWithCurrentThreads(
        _ buffers: [Int32: UnsafeMutablePointer<Float>], prepared: [Int32: LayoutCopy], sources: [Int32: LayoutCopy],
        label: String, flops: Double
    ) throws -> [Int32: LayoutCopy] {
        var made: [Int32: LayoutCopy] = [:]
        let stream = DNNLContext.stream
        var temporaries: [Storage] = []
        var memories: [dnnl_memory_t] = []
        defer { for m in memories { dnnl_memory_destroy(m) } }
        func memory(_ md: dnnl_memory_desc_t, _ pointer: UnsafeMutableRawPointer) throws -> dnnl_memory_t {
            var md = md
            var m: dnnl_memory_t?
            try DNNLContext.check(dnnl_memory_create(&m, &md, DNNLContext.engine, pointer), "memory_create")
            memories.append(m!)
            return m!
        }
        func temporary(bytes: Int) -> UnsafeMutableRawPointer {
            let storage = Storage(count: (bytes + 3) / 4)
            temporaries.append(storage)
            return UnsafeMutableRawPointer(storage.pointer)
        }

        var execArgs: [dnnl_exec_arg_t] = []
        var outputReorders: [(Reorder, dnnl_memory_t, dnnl_memory_t, Int32)] = []
        for arg in arguments {
            guard let pointer = buffers[arg.id] else {
                preconditionFailure("DNNLPrimitive.execute: no buffer for argument \(arg.id)")
            }
            let userMemory = try memory(arg.user, UnsafeMutableRawPointer(pointer))
            guard let reorder = arg.reorder else {
                execArgs.append(dnnl_exec_arg_t(arg: arg.id, memory: userMemory))
                continue
            }
            if !arg.isOutput, let copy = prepared[arg.id], copy.matches(arg.chosen) {
                let copyMemory = try memory(arg.chosen, UnsafeMutableRawPointer(copy.storage.pointer))
                temporaries.append(copy.storage)
                execArgs.append(dnnl_exec_arg_t(arg: arg.id, memory: copyMemory))
                continue
            }
            let chosenStorage = Storage(count: (arg.chosenBytes + 3) / 4)
            temporaries.append(chosenStorage)
            let chosenMemory = try memory(arg.chosen, UnsafeMutableRawPointer(chosenStorage.pointer))
            if arg.isOutput {
                outputReorders.append((reorder, chosenMemory, userMemory, arg.id))
                made[arg.id] = LayoutCopy(storage: chosenStorage, descriptor: arg.chosen)
            } else if let source = sources[arg.id], let fromSource = self.reorder(from: source, into: arg) {
                let sourceMemory = try memory(source.descriptor, UnsafeMutableRawPointer(source.storage.pointer))
                temporaries.append(source.storage)
                try Profiler.measure("reorder \(label.prefix { $0 != " " }) \(argumentName(arg.id)) from copy") {
                    try fromSource.run(from: sourceMemory, to: chosenMemory, stream: stream, scratch: temporary)
                }
                made[arg.id] = LayoutCopy(storage: chosenStorage, descriptor: arg.chosen)
            } else {
                try Profiler.measure("reorder \(label.prefix { $0 != " " }) \(argumentName(arg.id))") {
                    try reorder.run(from: userMemory, to: chosenMemory, stream: stream, scratch: temporary)
                }
                made[arg.id] = LayoutCopy(storage: chosenStorage, descriptor: arg.chosen)
            }
            execArgs.append(dnnl_exec_arg_t(arg: arg.id, memory: chosenMemory))
        }
        if scratchpadBytes > 0 {
            var md = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0)!.pointee
            var m: dnnl_memory_t?
            try DNNLContext.check(dnnl_memory_create(&m, &md, DNNLContext.engine, temporary(bytes: scratchpadBytes)),
                                  "memory_create(scratchpad)")
            memories.append(m!)
            execArgs.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: m))
        }
        try Profiler.measure(label + " [kernel]", flops: flops) {
            try DNNLContext.check(dnnl_primitive_execute(primitive, stream, Int32(execArgs.count), execArgs),
                                  "primitive_execute(\(implementation))")
            try DNNLContext.check(dnnl_stream_wait(stream), "stream_wait")
        }
        for (reorder, from, to, id) in outputReorders {
            try Profiler.measure("reorder \(label.prefix { $0 != " " }) \(argumentName(id))") {
                try reorder.run(from: from, to: to, stream: stream, scratch: temporary)
            }
        }
        try DNNLContext.check(dnnl_stream_wait(stream), "stream_wait")
        withExtendedLifetime(temporaries) {}
        return made
    }

    /// The values at `buffer`, in input argument `id`'s given layout, as a copy in the layout the
    /// primitive chose for it; nil where the two are the same.
    func chosenCopy(_ id: Int32, of buffer: UnsafeMutableRawPointer) throws -> LayoutCopy? {
        guard let arg = arguments.first(where: { $0.id == id }), !arg.isOutput, let reorder = arg.reorder else { return nil }
        let storage = Storage(count: (arg.chosenBytes + 3) / 4)
        var (user, chosen) = (arg.user, arg.chosen)
        var from: dnnl_memory_t?, to: dnnl_memory_t?
        defer { [from, to].compactMap { $0 }.forEach { dnnl_memory_destroy($0) } }
        try DNNLContext.check(dnnl_memory_create(&from, &user, DNNLContext.engine, buffer), "memory_create")
        try DNNLContext.check(dnnl_memory_create(&to, &chosen, DNNLContext.engine, storage.pointer), "memory_create")
        var scratch: [Storage] = []
        try reorder.run(from: from!, to: to!, stream: DNNLContext.stream) { bytes in
            scratch.append(Storage(count: (bytes + 3) / 4))
            return UnsafeMutableRawPointer(scratch.last!.pointer)
        }
        try DNNLContext.check(dnnl_stream_wait(DNNLContext.stream), "stream_wait")
        withExtendedLifetime(scratch) {}
        return LayoutCopy(storage: storage, descriptor: arg.chosen)
    }

    /// The layout the primitive chose for argument `id` when it is not the plain one.
    func chosenLayout(_ id: Int32) -> dnnl_memory_desc_t? {
        arguments.first { $0.id == id && $0.reorder != nil }?.chosen
    }

    /// A short name of an execution argument, for the profiler.
    func argumentName(_ id: Int32) -> String {
        switch id {
        case DNNL_ARG_SRC: "src"
        case DNNL_ARG_DST: "dst"
        case DNNL_ARG_WEIGHTS: "weights"
        case DNNL_ARG_BIAS: "bias"
        case DNNL_ARG_DIFF_SRC: "diff_src"
        case DNNL_ARG_DIFF_DST: "diff_dst"
        case DNNL_ARG_DIFF_WEIGHTS: "diff_weights"
        default: "arg \(id)"
        }
    }

    static func implementationName(_ descriptor: dnnl_primitive_desc_t) -> String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success,
              let name else { return "unknown" }
        return String(cString: name)
    }

    static func scratchpadSize(_ descriptor: dnnl_primitive_desc_t) -> Int {
        guard var md = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0)?.pointee else { return 0 }
        return dnnl_memory_desc_get_size(&md)
    }
}

/// A tensor's values in a layout a primitive chose (for example oneDNN's channel-blocked
/// `nChw8c`), kept so that the next primitive reading the same values in the same layout need
/// not reorder them again.
///
/// Holds a snapshot: it stays valid only while the tensor it was made from is not written, which
/// is what autograd assumes of every tensor saved for the backward pass anyway.
final class LayoutCopy: @unchecked Sendable {
    let storage: Storage
    let descriptor: dnnl_memory_desc_t
    /// Copies derived from these values that travel with them, such as the sub-kernels of a
    /// weight in each of `BackwardDataPhases`' kernel layouts.
    let parts: [LayoutCopy]

    init(storage: Storage, descriptor: dnnl_memory_desc_t, parts: [LayoutCopy] = []) {
        self.storage = storage
        self.descriptor = descriptor
        self.parts = parts
    }

    func matches(_ other: dnnl_memory_desc_t) -> Bool {
        var a = descriptor, b = other
        return dnnl_memory_desc_equal(&a, &b) != 0
    }

    /// Whether `other` describes a tensor of the same dimensions (in any layout).
    func hasDimensions(of other: dnnl_memory_desc_t) -> Bool {
        var a = descriptor, b = other
        let dims = { (d: inout dnnl_memory_desc_t) in withUnsafeBytes(of: &d.dims) { Array($0.bindMemory(to: Int64.self).prefix(Int(d.ndims))) } }
        return a.ndims == b.ndims && dims(&a) == dims(&b)
    }

    /// The same values seen with two axes exchanged (`dnnl_memory_desc_permute_axes`), or nil
    /// where oneDNN cannot describe that.
    func swappingAxes(_ a: Int, _ b: Int) -> LayoutCopy? {
        var source = descriptor, permuted = dnnl_memory_desc_t()
        var permutation = (0..<Int(source.ndims)).map(Int32.init)
        guard a < permutation.count, b < permutation.count else { return nil }
        permutation.swapAt(a, b)
        guard dnnl_memory_desc_permute_axes(&permuted, &source, permutation) == dnnl_success else { return nil }
        return LayoutCopy(storage: storage, descriptor: permuted)
    }
}

/// The copies of one tensor's values in kernel layouts, kept on a tensor whose values do not
/// change (`Tensor.keepLayoutCopies()`), so that every primitive reading it in one of those
/// layouts skips its reorder: weights used for inference batch after batch, an activation read
/// by several branches, a convolution's result read by the next convolution.
final class LayoutCopies: @unchecked Sendable {
    private let copies = Locked<[LayoutCopy]>([])

    /// The copy in layout `descriptor`, if one was kept.
    func copy(matching descriptor: dnnl_memory_desc_t) -> LayoutCopy? {
        copies.withLock { list in list.first { $0.matches(descriptor) } }
    }

    /// A copy in another layout of the same dimensions and element type as `descriptor` (a bf16
    /// copy for a bf16 kernel), to reorder from instead of the f32 values
    /// (`DNNLPrimitive.execute(sources:)`). Copies of other dimensions (a weight's sub-kernels,
    /// `BackwardDataPhases`) are not candidates.
    func copy(ofTypeOf descriptor: dnnl_memory_desc_t) -> LayoutCopy? {
        copies.withLock { list in list.first { $0.descriptor.data_type == descriptor.data_type && $0.hasDimensions(of: descriptor) } }
    }

    /// Keeps `copy` unless one in its layout is kept already.
    func add(_ copy: LayoutCopy) {
        copies.withLock { list in
            if !list.contains(where: { $0.matches(copy.descriptor) }) { list.append(copy) }
        }
    }

    func removeAll() {
        copies.withLock { $0.removeAll() }
    }

    /// How many copies are kept.
    var count: Int { copies.withLock { $0.count } }
}

/// A reorder primitive between two layouts of the same f32 tensor.
final class Reorder: @unchecked Sendable {
    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    let scratchpadBytes: Int
    let implementation: String
    /// The OpenMP thread count at creation; `run` uses it.
    let threads: Int

    init(from source: dnnl_memory_desc_t, to destination: dnnl_memory_desc_t) throws {
        var source = source, destination = destination
        let attr = try DNNLContext.makeAttributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: dnnl_primitive_desc_t?
        try DNNLContext.check(
            dnnl_reorder_primitive_desc_create(&pd, &source, DNNLContext.engine, &destination, DNNLContext.engine, attr),
            "reorder_primitive_desc_create")
        var made: dnnl_primitive_t?
        do {
            try DNNLContext.check(dnnl_primitive_create(&made, pd), "primitive_create(reorder)")
        } catch {
            dnnl_primitive_desc_destroy(pd)
            throw error
        }
        descriptor = pd!
        primitive = made!
        scratchpadBytes = DNNLPrimitive.scratchpadSize(pd!)
        implementation = DNNLPrimitive.implementationName(pd!)
        threads = Int(omp_get_max_threads())
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    func run(from: dnnl_memory_t, to: dnnl_memory_t, stream: dnnl_stream_t,
             scratch: (Int) -> UnsafeMutableRawPointer) throws {
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: from), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: to)]
        var scratchMemory: dnnl_memory_t?
        defer { if let scratchMemory { dnnl_memory_destroy(scratchMemory) } }
        if scratchpadBytes > 0 {
            var md = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0)!.pointee
            try DNNLContext.check(dnnl_memory_create(&scratchMemory, &md, DNNLContext.engine, scratch(scratchpadBytes)),
                                  "memory_create(reorder scratchpad)")
            args.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratchMemory))
        }
        try Runtime.withOpenMPThreads(threads) {
            try DNNLContext.check(dnnl_primitive_execute(primitive, stream, Int32(args.count), args), "reorder execute")
        }
    }
}
