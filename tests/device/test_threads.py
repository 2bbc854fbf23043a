"""CPU threads: set once per command, fitted to the cores other processes leave, followed as the load changes;
subnormal floats flushed."""

import torch


def test_threads_fit_the_cores_other_processes_leave():
    from rnnclf.device.cores import threads_for

    assert threads_for(2, None) == 2  # nothing known: every core
    assert threads_for(2, 0.0) == 2 and threads_for(2, 0.4) == 2
    assert threads_for(2, 0.6) == 1 and threads_for(2, 1.0) == 1
    assert threads_for(2, 2.0) == 1  # never fewer than one
    assert threads_for(8, 2.7) == 5


def test_thread_governor_follows_the_load(monkeypatch):
    from rnnclf.device import threads

    said = []
    loads = iter([0.0, 1.0, 0.0, 0.0, 1.2])
    monkeypatch.setattr(threads.OtherLoad, "measure", lambda self: next(loads))
    set_to = []
    monkeypatch.setattr(threads, "use_cpu_threads", lambda count: set_to.append(count) or count)
    governor = threads.ThreadGovernor(2, None, said.append)
    governor.CHECK_SECONDS = 0.0
    assert governor.start() == (2, "2 cores available, other processes use 0.0")
    governor.check()  # another job uses a core: down at once
    assert governor.threads == 1 and said == ["threads: 2 -> 1 (2 cores available, other processes use 1.0)"]
    governor.check()  # idle once: not yet back up
    assert governor.threads == 1
    governor.check()  # idle twice in a row: back up
    assert governor.threads == 2 and set_to == [2, 1, 2]
    governor.check()
    assert governor.threads == 1
    assert [c["threads"] for c in governor.changes] == [1, 2, 1]


def test_a_fixed_thread_count_never_changes(monkeypatch):
    from rnnclf.device import threads

    monkeypatch.setattr(threads.OtherLoad, "measure", lambda self: 2.0)
    governor = threads.ThreadGovernor(2, 2, lambda line: None)
    governor.CHECK_SECONDS = 0.0
    assert governor.start() == (2, "train.num_threads")
    governor.check()
    assert governor.threads == 2 and governor.changes == []


def test_subnormal_floats_are_flushed():
    from rnnclf.device.threads import use_cpu_threads

    threads = torch.get_num_threads()
    use_cpu_threads(threads)
    tiny = torch.tensor([1e-40], dtype=torch.float32)  # subnormal in fp32
    assert (tiny * 1.0).item() == 0.0
