// A C ABI over PyTorch's c10d: a TCPStore rendezvous, a process group (Gloo,
// or NCCL where built with a CUDA libtorch), the three collectives data
// parallel training needs, and DDP's own gradient Reducer (the engine behind
// torch.nn.parallel.DistributedDataParallel), which all-reduces buckets of
// gradients from autograd hooks while the backward pass is still running. Every entry point catches what c10d throws and
// hands its message back as a malloc'd string, so no C++ exception crosses
// into Rust. Tensors are tch's (`torch::Tensor*`, torch-sys's C_tensor).
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef ROADSIGN_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct rs_c10d_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  // The backend registered in a ProcessGroup, which is what the Reducer
  // talks to (as torch.distributed's default group does).
  c10::intrusive_ptr<c10d::ProcessGroup> group;
};

struct rs_c10d_reducer {
  std::unique_ptr<c10d::Reducer> reducer;
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
    const auto type = backend == 0 ? c10d::ProcessGroup::BackendType::GLOO
                                   : c10d::ProcessGroup::BackendType::NCCL;
    group->group = c10::make_intrusive<c10d::ProcessGroup>(group->store, rank, world);
    group->group->setDefaultBackend(type);
    group->group->setBackend(backend == 0 ? c10::DeviceType::CPU : c10::DeviceType::CUDA, type,
                             group->backend);
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

// DDP's Reducer over `params` (leaf tensors that require grad, every one
// reached by each synchronised backward), set up as
// DistributedDataParallel(model, bucket_cap_mb=...) sets it up: one bucket
// for the first synchronised backward, which records the order gradients
// become ready in; from the next, buckets of at most `bucket_bytes` in that
// order (the first, ready earliest, of `first_bucket_bytes`).
rs_c10d_reducer* rs_c10d_reducer_new(rs_c10d_group* group, torch::Tensor* const* params,
                                     size_t count, int64_t bucket_bytes,
                                     int64_t first_bucket_bytes, char** err) {
  *err = nullptr;
  try {
    std::vector<at::Tensor> tensors;
    for (size_t i = 0; i < count; ++i) {
      tensors.push_back(*params[i]);
    }
    std::vector<bool> sparse(count, false);
    auto assignment = c10d::compute_bucket_assignment_by_size(
        tensors, {std::numeric_limits<size_t>::max()}, sparse);
    auto buckets = std::get<0>(assignment);
    std::reverse(buckets.begin(), buckets.end());
    auto owned = std::make_unique<rs_c10d_reducer>();
    owned->reducer = std::make_unique<c10d::Reducer>(
        std::move(tensors), std::move(buckets), group->group, std::move(sparse), bucket_bytes,
        /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
        std::unordered_map<size_t, std::string>{}, first_bucket_bytes,
        /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false,
        std::vector<int64_t>{});
    return owned.release();
  }
  RS_C10D_CATCH(err)
  return nullptr;
}

void rs_c10d_reducer_free(rs_c10d_reducer* reducer) {
  try {
    delete reducer;
  } catch (...) {
    // ~Reducer may throw (noexcept(false)); nothing left to release then.
  }
}

// Backward from `loss`. With `synchronize` (DDP outside no_sync()), the
// Reducer expects every parameter's hook: buckets are all-reduced as they
// fill, and when backward ends every .grad holds the mean over the ranks of
// the gradients accumulated so far. Without it, gradients only accumulate
// locally, as under no_sync(). Every rank makes the same calls, so the
// one-time rebuild of the buckets (a broadcast of rank 0's order, which DDP
// starts before a forward) happens at the same point on all of them.
int rs_c10d_reducer_backward(rs_c10d_reducer* reducer, torch::Tensor* loss, int synchronize,
                             char** err) {
  *err = nullptr;
  try {
    reducer->reducer->rebuild_buckets();
    if (synchronize != 0) {
      reducer->reducer->prepare_for_forward();
      reducer->reducer->prepare_for_backward({});
    }
    loss->backward();
    return 0;
  }
  RS_C10D_CATCH(err)
  return 1;
}

}  // extern "C"
