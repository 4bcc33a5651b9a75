#!/usr/bin/env python3
"""Shares of a perf profile's samples, for one thread name, read from `perf script`.

perf report's --comm filter with --children and --percentage relative gives inclusive shares
above 100% with perf 6.1 on this kernel; counting the samples ourselves is plain: a sample
is one stack, its first frame is the self symbol, and a symbol's inclusive share counts each
sample whose stack holds it once. Used for the excerpts in docs/io-models.md:

    perf record -e cpu-clock -g -a -o uring.data -- sleep 5      # while wrk runs
    perf script -i uring.data -F comm,pid,tid,cpu,ip,sym,dso | \\
        python3 perf/profile_shares.py --comm rs-loop-0 --pid SERVER_PID --top 12 \\
            --symbols __io_run_local_work,io_poll_task_func,io_recv,_copy_to_iter

--comm takes several names separated by commas (rs-worker for the threads backend's workers,
wrk for the load generator); --pid keeps one process (another ringserve on the machine has
threads of the same names). Prints the kernel/user split, the top self symbols and the
inclusive and self shares of the named symbols, as percentages of that thread's samples.
"""
import argparse
import collections
import sys

KERNEL_START = 0xFFFF800000000000


def samples(lines):
    """Yields (comm, pid, frames) per sample; frames are (address, symbol, dso), leaf first.

    The sample's first line is "COMM PID/TID [CPU]" (or "COMM TID [CPU]" without the pid field).
    """
    comm, pid, frames = None, None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield comm, pid, frames
            comm, pid, frames = None, None, []
        elif not line[0].isspace():
            head = line.split()
            at = next(i for i, word in enumerate(head) if word.startswith("["))
            comm, pid, frames = " ".join(head[: at - 1]), head[at - 1].split("/")[0], []
        else:
            parts = line.split(None, 1)
            rest = parts[1] if len(parts) > 1 else "[unknown]"
            symbol, _, dso = rest.rpartition(" (")
            frames.append((int(parts[0], 16), symbol or rest, dso.rstrip(")")))
    if comm is not None:
        yield comm, pid, frames


def self_name(frame):
    address, symbol, dso = frame
    if symbol != "[unknown]":
        return ("[k] " if address >= KERNEL_START else "[.] ") + symbol
    return "[.] (" + dso.rsplit("/", 1)[-1] + ")"


def count(lines, comms, pid, wanted):
    """Samples of the named threads: total, kernel-leaf, self and inclusive counters."""
    total = kernel = 0
    own = collections.Counter()
    inclusive = collections.Counter()
    for comm, sample_pid, frames in samples(lines):
        if comm not in comms or not frames or (pid and sample_pid != pid):
            continue
        total += 1
        kernel += frames[0][0] >= KERNEL_START
        own[self_name(frames[0])] += 1
        inclusive.update({symbol for _, symbol, _ in frames} & wanted)
    return total, kernel, own, inclusive


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--comm", required=True, help="thread names, comma-separated")
    parser.add_argument("--pid", help="only this process (needs the pid field in perf script)")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--symbols", default="", help="comma-separated symbols to report")
    args = parser.parse_args()
    wanted = [s for s in args.symbols.split(",") if s]
    total, kernel, own, inclusive = count(sys.stdin, set(args.comm.split(",")), args.pid,
                                          set(wanted))
    if total == 0:
        sys.exit(f"no samples of {args.comm}")
    who = args.comm + (f" pid {args.pid}" if args.pid else "")
    print(f"{total} samples of {who}: kernel {100 * kernel / total:.1f}%, "
          f"user {100 * (total - kernel) / total:.1f}%")
    print(f"top {args.top} self:")
    for name, n in own.most_common(args.top):
        print(f"  {100 * n / total:6.2f}%  {name}")
    if wanted:
        print("named symbols, inclusive (self):")
        for symbol in wanted:
            share = 100 * inclusive[symbol] / total
            own_share = 100 * own["[k] " + symbol] / total
            print(f"  {share:6.2f}% ({own_share:5.2f}%)  {symbol}")


if __name__ == "__main__":
    main()
