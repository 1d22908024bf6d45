//! Rendering, quoting and parsing a typical test-VM command line.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use qemu_cmdline::{
    Accel, CharDevSpec, Chardev, Cmdline, Device, Display, Drive, HostFwd, Machine, Memory, Mon,
    Name, Netdev, Smp,
};

/// About what qemu-machine starts for a test guest: 19 options, 38 arguments.
fn typical() -> Cmdline {
    let mut cmd = Cmdline::new();
    cmd.machine(Machine::new("pc"))
        .accel(Accel::tcg())
        .memory(Memory::mib(256))
        .smp(Smp::new(2))
        .name(Name::new("bench,vm"))
        .nodefaults()
        .display(Display::none())
        .no_reboot()
        .kernel("/var/lib/qemukit/vmlinuz")
        .initrd("/var/lib/qemukit/initramfs.cpio.gz")
        .append("console=ttyS0 panic=-1 quiet")
        .chardev(Chardev::socket_fd("qmp", 3))
        .mon(Mon::qmp("qmp"))
        .chardev(Chardev::socket_fd("con", 4))
        .serial(CharDevSpec::Chardev("con".into()))
        .drive(
            Drive::new("/tmp/disk,0.img")
                .format("raw")
                .interface("none")
                .id("d0"),
        )
        .device(Device::new("virtio-blk-pci").prop("drive", "d0"))
        .netdev(Netdev::user("n0").hostfwd(HostFwd::tcp(0, 22)))
        .device(Device::new("virtio-net-pci").prop("netdev", "n0"));
    cmd
}

fn bench(c: &mut Criterion) {
    let cmd = typical();
    let args = cmd.to_args().unwrap();
    c.bench_function("to_args (19 options)", |b| {
        b.iter(|| black_box(&cmd).to_args().unwrap())
    });
    c.bench_function("display / shell_quote (19 options)", |b| {
        b.iter(|| black_box(&cmd).to_string())
    });
    c.bench_function("parse_args (38 arguments)", |b| {
        b.iter(|| Cmdline::parse_args(black_box(&args)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
