// AtomicFile.write (StateStore.swift) writes `<state file>.tmp.<pid>` and
// renames it over the state file; a `kill -9` between the two leaves the
// temporary behind (10-14 per 100 killed updates, issue 11 §5). At start the
// daemon removes those of processes that no longer exist. Only names of
// exactly that pattern in the state file's own directory are touched, and a
// live process's temporary (another daemon mid-write) is left alone.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateSystem

extension StateStore {
    /// Removes `<name>.tmp.<pid>` files whose process is gone; returns the paths removed.
    @discardableResult
    public func removeStaleTemporaries() -> [String] {
        let dir = AtomicFile.directory(of: path)
        let base = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        let prefix = base + ".tmp."
        var removed: [String] = []
        for name in Self.directoryEntries(dir) {
            guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count)), pid > 0,
                  String(pid) == name.dropFirst(prefix.count),  // digits only, as AtomicFile writes them
                  pid != System.processID(), !Self.processExists(pid) else { continue }
            let full = dir == "/" ? "/" + name : dir + "/" + name
            do throws(SystemError) { try System.removeFile(full); removed.append(full) } catch {
                Log.warn("state_temp_not_removed", ["file": full, "error": error.reason])
            }
        }
        if !removed.isEmpty { AtomicFile.syncDirectory(of: path) }
        return removed
    }

    static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }

    /// Names in `dir` (none when it cannot be read: then there is nothing to clean either).
    static func directoryEntries(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
