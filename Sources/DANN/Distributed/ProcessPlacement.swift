import Foundation

// Where this process runs (its machine and the CPUs it may use) and how many compute threads a rank takes:
// the one place that asks the host. Communicators, the trainer, eval/analyze and the TensorBoard writer ask here.

/// Compute threads per rank: max(1, cores on the node / ranks on the node), unless `override` (e.g. the
/// `--threads` flag) is given, and never more than the cores this process may run on (mpirun binds a rank
/// to one core by default for np <= 2, where more threads would only take turns on that core).
public func defaultThreadsPerRank(localSize: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                                  allowedCores: Int? = coresAllowedByAffinity(), override: Int? = nil) -> Int {
    if let override, override > 0 { return override }
    let share = max(1, cores / max(1, localSize))
    guard let allowedCores, allowedCores > 0 else { return share }
    return min(share, allowedCores)
}

/// The number of CPUs this process may run on (its affinity mask), or nil where that cannot be read.
public func coresAllowedByAffinity() -> Int? {
    allowedCPUList().flatMap(cpuCount(inList:))
}

/// The number of CPUs in a kernel CPU list ("0-3,8,10-11" → 7), or nil if it is not one.
func cpuCount(inList list: String) -> Int? {
    var count = 0
    for part in list.split(separator: ",") {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard bounds.count <= 2, let low = bounds.first ?? nil, let high = bounds.last ?? nil, high >= low else { return nil }
        count += high - low + 1
    }
    return count > 0 ? count : nil
}

/// The CPUs this process may run on, as the kernel lists them ("0-1", "3"), or "?" where unreadable.
func cpusAllowedList() -> String {
    allowedCPUList() ?? "?"
}

/// The machine's name as gethostname reports it (no DNS lookup, unlike `ProcessInfo.hostName`);
/// "localhost" where it has none.
func currentHostname() -> String {
    var name = [CChar](repeating: 0, count: 256)
    guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
    let text = String(cString: name)
    return text.isEmpty ? "localhost" : text
}

/// `Cpus_allowed_list` of /proc/self/status: Swift's Glibc module hides sched_getaffinity (a _GNU_SOURCE
/// call), and the kernel prints the same mask there.
private func allowedCPUList() -> String? {
    let key = "Cpus_allowed_list:"
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
    let list = line.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
    return list.isEmpty ? nil : list
}
