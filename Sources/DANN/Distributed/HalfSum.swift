import CMPI

/// The reduction functions of the 16-bit gradient allreduce (`--allreduce-dtype bf16|fp16`, docs/design.md §3.10)
/// as the C function pointers MPI_Op_create takes. MPI calls one with an incoming vector and the in-out partial
/// sum, `*length` elements of MPI_UINT16_T each, whenever its algorithm combines two contributions; the
/// function widens both to Float, adds and rounds back (`HalfFloat.add`).
enum HalfSum {
    typealias Function = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?,
                                         UnsafeMutablePointer<MPI_Datatype?>?) -> Void

    /// A C function pointer cannot capture the format, so each format has its own literal.
    static func function(_ format: HalfFormat) -> Function {
        switch format {
        case .bf16: return { input, partial, length, _ in HalfSum.apply(input, partial, length, format: .bf16) }
        case .fp16: return { input, partial, length, _ in HalfSum.apply(input, partial, length, format: .fp16) }
        }
    }

    @inline(__always)
    private static func apply(_ input: UnsafeMutableRawPointer?, _ partial: UnsafeMutableRawPointer?,
                              _ length: UnsafeMutablePointer<Int32>?, format: HalfFormat) {
        guard let input, let partial, let length, length.pointee > 0 else { return }
        let count = Int(length.pointee)
        HalfFloat.add(input.assumingMemoryBound(to: UInt16.self), into: partial.assumingMemoryBound(to: UInt16.self),
                      count: count, format: format)
    }
}
