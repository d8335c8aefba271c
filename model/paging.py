"""Machine memory: 4-level page tables, frame ownership and Xen PV validation.

Page-table pages live in one pool (``pt``: one row of ``PT_ENTRIES`` (512) entries per
page). A non-leaf entry holds ``pool index << PAGE_SHIFT | flags``; a leaf holds
``frame << PAGE_SHIFT | flags``; the entry bits, widths and table geometry are defined
once, in :mod:`model.isa`, and imported here and by the kernel (:mod:`model.cpu`).
Page-table page *i* occupies machine frame ``n_data_frames + i``, so ownership and
"is a page table" are properties of machine frames, as in Xen's ``struct page_info``:
a data frame belongs to the domain whose reservation (one contiguous range of frames)
holds it, a page-table page to the domain that allocated it (``pt_owner``). Nothing is kept per
data frame, so the cost of a host does not grow with its configured memory.

Per address space ``space_flags`` bit :data:`PROTECTED` says Xen watches its tables
(PV direct paging: pinned). Writes to a protected space's tables go through the mode's
handling (a hypercall); writes to an unprotected one are plain stores, as when Linux PV
fills a child's tables before pinning them. Under shadow paging the VMM watches page
tables one page at a time, and they stay watched after the guest frees them
(``pt_shadow``, :mod:`model.shadow`).

Examples
--------
>>> mem = Memory(n_data_frames=64, max_pt_pages=32, max_spaces=4)
>>> s = mem.new_space(dom=1)
>>> mem.reserve(1, first=0, count=16)
>>> from model.isa import make_pte, PTE_P, PTE_W
>>> mem.set_pte(s, 0x400, make_pte(3, PTE_P | PTE_W))  # allocates the L3, L2 and L1 tables
3
>>> mem.lookup(s, 0x400) >> 12
3
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .errors import ConfigError
from .isa import (
    FRAME_MASK,
    PAGE_SHIFT,
    PT_ENTRIES,
    PT_INDEX_BITS,
    PT_INDEX_MASK,
    PT_LEVELS,
    PTE_P,
    PTE_U,
    PTE_W,
)

FRAMES_PER_MB = (1 << 20) >> PAGE_SHIFT  # 4 KiB frames
PROTECTED = 1
#: the columns of ``spaces``: root table, owning domain, flags, and the stamp of its last
#: use as a cached shadow root (0: not cached; :mod:`model.shadow`)
SPACE_ROOT, SPACE_DOM, SPACE_FLAGS, SPACE_SHADOW = 0, 1, 2, 3

# ctl slots
CTL_NDATA = 0  # number of data frames
CTL_FREE_TOP = 1  # entries on the page-table free stack
CTL_PT_USED = 2  # page-table pages in use (high-water is CTL_PT_NEXT)
CTL_PT_NEXT = 3  # bump pointer into the pool
CTL_SHADOW_CLOCK = 4  # shadow roots used so far (their LRU clock: model.shadow)


@njit(cache=True)
def alloc_pt(pt, pt_free, pt_owner, ctl, dom):
    """Take a zeroed page-table page from the pool for domain ``dom``; -1 if full."""
    if ctl[CTL_FREE_TOP] > 0:
        ctl[CTL_FREE_TOP] -= 1
        page = pt_free[ctl[CTL_FREE_TOP]]
    elif ctl[CTL_PT_NEXT] < pt.shape[0]:
        page = ctl[CTL_PT_NEXT]
        ctl[CTL_PT_NEXT] += 1
    else:
        return -1
    pt[page, :] = 0
    pt_owner[page] = dom
    ctl[CTL_PT_USED] += 1
    return page


@njit(cache=True)
def pte_slot(pt, spaces, pt_owner, ctl, pt_free, space, vpn, create):
    """Locate the leaf entry of ``vpn``: returns (page, index, tables allocated).

    With ``create`` missing intermediate tables are allocated; otherwise a
    missing one gives page -1.
    """
    page = spaces[space, SPACE_ROOT]
    allocated = 0
    for level in range(PT_LEVELS - 1, 0, -1):
        idx = (vpn >> (PT_INDEX_BITS * level)) & PT_INDEX_MASK
        e = pt[page, idx]
        if e & PTE_P == 0:
            if not create:
                return -1, 0, allocated
            new = alloc_pt(pt, pt_free, pt_owner, ctl, spaces[space, SPACE_DOM])
            if new < 0:
                return -2, 0, allocated
            pt[page, idx] = (new << PAGE_SHIFT) | PTE_P | PTE_W | PTE_U
            allocated += 1
            page = new
        else:
            page = (e >> PAGE_SHIFT) & FRAME_MASK
    return page, vpn & PT_INDEX_MASK, allocated


@njit(cache=True)
def pv_valid(reservations, pt_owner, ctl, dom, value):
    """Xen's check of one L1 entry: a guest maps only frames it owns, and
    page-table pages only read-only."""
    if value & PTE_P == 0:
        return True
    mfn = (value >> PAGE_SHIFT) & FRAME_MASK
    page = mfn - ctl[CTL_NDATA]
    if page >= 0:  # a page-table page
        return page < pt_owner.shape[0] and pt_owner[page] == dom and value & PTE_W == 0
    return 0 <= dom < reservations.shape[0] and reservations[dom, 0] <= mfn < reservations[dom, 1]


@njit(cache=True)
def leaves(pt, root, ndata):
    """All present leaf entries under ``root`` as an (n, 2) array of (vpn, pte),
    and the pool indexes of the non-root tables."""
    n = 0
    n_tables = 0
    for sweep in range(2):
        if sweep == 1:
            out = np.zeros((n, 2), np.int64)
            tables = np.zeros(n_tables, np.int64)
            n = 0
            n_tables = 0
        for i4 in range(PT_ENTRIES):
            e4 = pt[root, i4]
            if e4 & PTE_P == 0:
                continue
            t3 = (e4 >> PAGE_SHIFT) & FRAME_MASK
            if sweep == 1:
                tables[n_tables] = t3
            n_tables += 1
            for i3 in range(PT_ENTRIES):
                e3 = pt[t3, i3]
                if e3 & PTE_P == 0:
                    continue
                t2 = (e3 >> PAGE_SHIFT) & FRAME_MASK
                if sweep == 1:
                    tables[n_tables] = t2
                n_tables += 1
                for i2 in range(PT_ENTRIES):
                    e2 = pt[t2, i2]
                    if e2 & PTE_P == 0:
                        continue
                    t1 = (e2 >> PAGE_SHIFT) & FRAME_MASK
                    if sweep == 1:
                        tables[n_tables] = t1
                    n_tables += 1
                    for i1 in range(PT_ENTRIES):
                        e1 = pt[t1, i1]
                        if e1 & PTE_P == 0:
                            continue
                        if sweep == 1:
                            out[n, 0] = (
                                ((i4 << PT_INDEX_BITS | i3) << PT_INDEX_BITS | i2) << PT_INDEX_BITS
                            ) | i1
                            out[n, 1] = e1
                        n += 1
    return out, tables


class Memory:
    """The host's machine memory: the page-table pool and frame ownership.

    Parameters
    ----------
    n_data_frames : int
        Machine frames available for guest data (4 KiB each).
    max_pt_pages : int
        Capacity of the page-table pool.
    max_spaces : int
        Maximum number of live address spaces.
    max_domains : int
        Domain ids are below this.
    """

    def __init__(
        self,
        n_data_frames: int = 1 << 20,
        max_pt_pages: int = 1 << 14,
        max_spaces: int = 4096,
        max_domains: int = 4096,
    ) -> None:
        self.pt = np.zeros((max_pt_pages, PT_ENTRIES), np.int64)
        self.pt_free = np.zeros(max_pt_pages, np.int64)
        #: the domain that allocated each page-table page (-1: free)
        self.pt_owner = np.full(max_pt_pages, -1, np.int32)
        #: per domain: its reservation of data frames, [first, end)
        self.reservations = np.zeros((max_domains, 2), np.int64)
        #: the domain whose shadow-paging VMM shadows each page-table page, plus one (0:
        #: none); it outlives the page's use as a table (model.shadow)
        self.pt_shadow = np.zeros(max_pt_pages, np.int64)
        #: per address space: [root table (pool index), owning domain, flags, shadow stamp]
        self.spaces = np.zeros((max_spaces, 4), np.int64)
        self.space_root = self.spaces[:, SPACE_ROOT]
        self.space_dom = self.spaces[:, SPACE_DOM]
        self.space_flags = self.spaces[:, SPACE_FLAGS]
        self.space_root[:] = -1
        self.space_dom[:] = -1
        self.ctl = np.zeros(5, np.int64)
        self.ctl[CTL_NDATA] = n_data_frames
        self._free_spaces = list(range(max_spaces - 1, -1, -1))

    @property
    def n_data_frames(self) -> int:
        return int(self.ctl[CTL_NDATA])

    def reserve(self, dom: int, first: int, count: int) -> None:
        """Make ``dom`` the owner of data frames ``first .. first + count - 1``."""
        if not 0 <= dom < self.reservations.shape[0]:
            raise ConfigError(
                f"domain id {dom} is beyond the {self.reservations.shape[0]} "
                "domains a host may have"
            )
        if first < 0 or first + count > self.n_data_frames:
            raise ConfigError(
                f"frames {first}..{first + count - 1} are not all data frames "
                f"of this host (it has {self.n_data_frames})"
            )
        self.reservations[dom] = (first, first + count)

    def owner(self, mfn: int) -> int:
        """The domain owning machine frame ``mfn`` (-1: none)."""
        page = mfn - self.n_data_frames
        if page >= 0:
            return int(self.pt_owner[page]) if page < len(self.pt_owner) else -1
        hit = np.nonzero((self.reservations[:, 0] <= mfn) & (mfn < self.reservations[:, 1]))[0]
        return int(hit[0]) if len(hit) else -1

    def new_space(self, dom: int) -> int:
        """Create an empty address space (a root L4 table) owned by ``dom``."""
        if not self._free_spaces:
            raise ConfigError("out of address spaces: raise max_spaces")
        space = self._free_spaces.pop()
        root = alloc_pt(self.pt, self.pt_free, self.pt_owner, self.ctl, dom)
        if root < 0:
            raise ConfigError("page-table pool exhausted: raise max_pt_pages")
        self.space_root[space] = root
        self.space_dom[space] = dom
        self.space_flags[space] = 0
        return space

    def free_space(self, space: int) -> int:
        """Release an address space and all its page-table pages; returns their number."""
        root = int(self.space_root[space])
        _, pages = leaves(self.pt, root, self.n_data_frames)
        for page in (*pages.tolist(), root):
            self.pt_free[self.ctl[CTL_FREE_TOP]] = page
            self.ctl[CTL_FREE_TOP] += 1
            self.pt_owner[page] = -1
        self.ctl[CTL_PT_USED] -= len(pages) + 1
        self.space_root[space] = -1
        self.space_dom[space] = -1
        self.spaces[space, SPACE_SHADOW] = 0  # a dead root leaves the shadow cache
        self._free_spaces.append(space)
        return len(pages) + 1

    def set_pte(self, space: int, vpn: int, value: int) -> int:
        """Write a leaf PTE directly (setup and tests; guests use PTE_WRITE).

        Returns the number of page-table pages allocated on the way.
        """
        page, idx, n = pte_slot(
            self.pt, self.spaces, self.pt_owner, self.ctl, self.pt_free, space, vpn, True
        )
        if page < 0:
            raise ConfigError("page-table pool exhausted: raise max_pt_pages")
        self.pt[page, idx] = value
        return n

    def lookup(self, space: int, vpn: int) -> int:
        """The leaf PTE of ``vpn`` (0 if none)."""
        page, idx, _ = pte_slot(
            self.pt, self.spaces, self.pt_owner, self.ctl, self.pt_free, space, vpn, False
        )
        return 0 if page < 0 else int(self.pt[page, idx])

    def present(self, space: int) -> np.ndarray:
        """Present leaf entries of ``space``: an (n, 2) array of (vpn, pte)."""
        out, _ = leaves(self.pt, int(self.space_root[space]), self.n_data_frames)
        return out

    def table_frames(self, space: int) -> list[int]:
        """Machine frames holding ``space``'s page tables (root first)."""
        root = int(self.space_root[space])
        _, pages = leaves(self.pt, root, self.n_data_frames)
        return [self.n_data_frames + p for p in (root, *pages.tolist())]
