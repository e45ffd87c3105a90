// A C ABI over PyTorch's c10d: a TCPStore rendezvous, a process group (Gloo,
// or NCCL where built with a CUDA libtorch) and the three collectives data
// parallel training needs. Every entry point catches what c10d throws and
// hands its message back as a malloc'd string, so no C++ exception crosses
// into Rust. Tensors are tch's (`torch::Tensor*`, torch-sys's C_tensor).
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef ROADSIGN_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct rs_c10d_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

struct rs_c10d_work {
  c10::intrusive_ptr<c10d::Work> work;
  // Held until the work is waited for: the collective writes into them.
  std::vector<at::Tensor> tensors;
};

static char* copy_message(const char* what) {
  size_t n = std::strlen(what);
  char* s = static_cast<char*>(std::malloc(n + 1));
  if (s != nullptr) {
    std::memcpy(s, what, n + 1);
  }
  return s;
}

#define RS_C10D_CATCH(err)                                  \
  catch (const c10::Error& e) {                             \
    *err = copy_message(e.what_without_backtrace());        \
  }                                                         \
  catch (const std::exception& e) {                         \
    *err = copy_message(e.what());                          \
  }                                                         \
  catch (...) {                                             \
    *err = copy_message("unknown C++ exception from c10d"); \
  }

extern "C" {

void rs_c10d_free_string(char* s) { std::free(s); }

// backend: 0 Gloo, 1 NCCL. device_kind (Gloo's network device): 0 the
// host's default (its hostname's address, else loopback), 1 the address or
// hostname in device_name, 2 the interface named by device_name.
rs_c10d_group* rs_c10d_connect(const char* master_addr, uint16_t master_port, int rank, int world,
                               int64_t timeout_ms, int backend, int device_kind,
                               const char* device_name, char** err) {
  *err = nullptr;
  try {
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions store_options;
    store_options.port = master_port;
    store_options.isServer = rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(world);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto group = std::make_unique<rs_c10d_group>();
    group->store = c10::make_intrusive<c10d::TCPStore>(std::string(master_addr), store_options);
    if (backend == 0) {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      if (device_kind == 1) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(device_name));
      } else if (device_kind == 2) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(device_name));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, rank, world, options);
    } else {
#ifdef ROADSIGN_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, rank, world, options);
#else
      throw std::runtime_error(
          "this build has no NCCL: build with the cargo feature `nccl` against a CUDA libtorch");
#endif
    }
    return group.release();
  }
  RS_C10D_CATCH(err)
  return nullptr;
}

void rs_c10d_group_free(rs_c10d_group* group) { delete group; }

// op: 0 all-reduce (sum), 1 broadcast from `root`. Starts the collective on
// the given tensors (modified in place) and returns its handle.
rs_c10d_work* rs_c10d_start(rs_c10d_group* group, int op, torch::Tensor* const* tensors,
                            size_t count, int root, char** err) {
  *err = nullptr;
  try {
    auto work = std::make_unique<rs_c10d_work>();
    for (size_t i = 0; i < count; ++i) {
      work->tensors.push_back(*tensors[i]);
    }
    if (op == 0) {
      c10d::AllreduceOptions options;
      options.reduceOp = c10d::ReduceOp::SUM;
      work->work = group->backend->allreduce(work->tensors, options);
    } else {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      work->work = group->backend->broadcast(work->tensors, options);
    }
    return work.release();
  }
  RS_C10D_CATCH(err)
  return nullptr;
}

// Waits for the collective (bounded by the group's timeout) and frees the
// handle whatever the outcome. Returns 0 on success.
int rs_c10d_wait(rs_c10d_work* work, char** err) {
  *err = nullptr;
  std::unique_ptr<rs_c10d_work> owned(work);
  try {
    owned->work->wait();
    return 0;
  }
  RS_C10D_CATCH(err)
  return 1;
}

int rs_c10d_barrier(rs_c10d_group* group, char** err) {
  *err = nullptr;
  try {
    group->backend->barrier()->wait();
    return 0;
  }
  RS_C10D_CATCH(err)
  return 1;
}

}  // extern "C"
