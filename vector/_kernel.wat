(module
  (memory (export "memory") 1)
  ;; out[i] = popcount(codes[i] xor q) for i in [0, n) and hist[out[i]] += 1;
  ;; codes are n blocks of `words` i64 at `codes`, q is `words` i64 at `q`,
  ;; out is u16, hist is u32 (words * 64 + 1 entries, zeroed by the caller).
  (func (export "hamming") (param $codes i32) (param $n i32) (param $words i32)
        (param $q i32) (param $out i32) (param $hist i32)
    (local $i i32) (local $acc i64) (local $p i32) (local $qe i32) (local $qp i32)
    (local $h i32)
    (local.set $qe (i32.add (local.get $q) (i32.shl (local.get $words) (i32.const 3))))
    (local.set $p (local.get $codes))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i64.const 0))
        (local.set $qp (local.get $q))
        (loop $inner
          (local.set $acc (i64.add (local.get $acc)
            (i64.popcnt (i64.xor (i64.load (local.get $p)) (i64.load (local.get $qp))))))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (local.set $qp (i32.add (local.get $qp) (i32.const 8)))
          (br_if $inner (i32.lt_u (local.get $qp) (local.get $qe))))
        (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 1)))
          (i32.wrap_i64 (local.get $acc)))
        (local.set $h (i32.add (local.get $hist)
          (i32.shl (i32.wrap_i64 (local.get $acc)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))
  ;; the same with 8 words (512 bits) unrolled
  (func (export "hamming512") (param $codes i32) (param $n i32)
        (param $q i32) (param $out i32) (param $hist i32)
    (local $i i32) (local $p i32) (local $d i32) (local $h i32)
    (local $q0 i64) (local $q1 i64) (local $q2 i64) (local $q3 i64)
    (local $q4 i64) (local $q5 i64) (local $q6 i64) (local $q7 i64)
    (local.set $q0 (i64.load offset=0 (local.get $q)))
    (local.set $q1 (i64.load offset=8 (local.get $q)))
    (local.set $q2 (i64.load offset=16 (local.get $q)))
    (local.set $q3 (i64.load offset=24 (local.get $q)))
    (local.set $q4 (i64.load offset=32 (local.get $q)))
    (local.set $q5 (i64.load offset=40 (local.get $q)))
    (local.set $q6 (i64.load offset=48 (local.get $q)))
    (local.set $q7 (i64.load offset=56 (local.get $q)))
    (local.set $p (local.get $codes))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $d
          (i32.wrap_i64
            (i64.add
              (i64.add
                (i64.add (i64.popcnt (i64.xor (i64.load offset=0 (local.get $p)) (local.get $q0)))
                         (i64.popcnt (i64.xor (i64.load offset=8 (local.get $p)) (local.get $q1))))
                (i64.add (i64.popcnt (i64.xor (i64.load offset=16 (local.get $p)) (local.get $q2)))
                         (i64.popcnt (i64.xor (i64.load offset=24 (local.get $p)) (local.get $q3)))))
              (i64.add
                (i64.add (i64.popcnt (i64.xor (i64.load offset=32 (local.get $p)) (local.get $q4)))
                         (i64.popcnt (i64.xor (i64.load offset=40 (local.get $p)) (local.get $q5))))
                (i64.add (i64.popcnt (i64.xor (i64.load offset=48 (local.get $p)) (local.get $q6)))
                         (i64.popcnt (i64.xor (i64.load offset=56 (local.get $p)) (local.get $q7))))))))
        (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 1)))
          (local.get $d))
        (local.set $h (i32.add (local.get $hist) (i32.shl (local.get $d) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))
  ;; Writes to dest (u32) every i with out[i] < t, and the first atT with
  ;; out[i] == t; returns how many.
  (func (export "select") (param $out i32) (param $n i32) (param $t i32)
        (param $atT i32) (param $dest i32) (result i32)
    (local $i i32) (local $c i32) (local $d i32)
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $d (i32.load16_u (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 1)))))
        (if (i32.lt_u (local.get $d) (local.get $t))
          (then
            (i32.store (i32.add (local.get $dest) (i32.shl (local.get $c) (i32.const 2))) (local.get $i))
            (local.set $c (i32.add (local.get $c) (i32.const 1))))
          (else
            (if (i32.and (i32.eq (local.get $d) (local.get $t)) (i32.gt_s (local.get $atT) (i32.const 0)))
              (then
                (i32.store (i32.add (local.get $dest) (i32.shl (local.get $c) (i32.const 2))) (local.get $i))
                (local.set $c (i32.add (local.get $c) (i32.const 1)))
                (local.set $atT (i32.sub (local.get $atT) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
    (local.get $c))
  ;; Copies the first 16 bytes of each of n codes (stride words * 8) to dst.
  (func (export "prefix") (param $codes i32) (param $n i32) (param $words i32)
        (param $dst i32)
    (local $i i32) (local $stride i32)
    (local.set $stride (i32.shl (local.get $words) (i32.const 3)))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i64.store offset=0 (local.get $dst) (i64.load offset=0 (local.get $codes)))
        (i64.store offset=8 (local.get $dst) (i64.load offset=8 (local.get $codes)))
        (local.set $codes (i32.add (local.get $codes) (local.get $stride)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))
  ;; Hamming distances of 128-bit prefixes (stride 16) to q, with histogram.
  (func (export "hamming128") (param $pre i32) (param $n i32) (param $q i32)
        (param $out i32) (param $hist i32)
    (local $i i32) (local $d i32) (local $h i32) (local $q0 i64) (local $q1 i64)
    (local.set $q0 (i64.load offset=0 (local.get $q)))
    (local.set $q1 (i64.load offset=8 (local.get $q)))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $d (i32.wrap_i64 (i64.add
          (i64.popcnt (i64.xor (i64.load offset=0 (local.get $pre)) (local.get $q0)))
          (i64.popcnt (i64.xor (i64.load offset=8 (local.get $pre)) (local.get $q1))))))
        (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 1)))
          (local.get $d))
        (local.set $h (i32.add (local.get $hist) (i32.shl (local.get $d) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $pre (i32.add (local.get $pre) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))
  ;; For j < m: out[j] = Hamming distance of codes[idx[j]] (words i64) to q,
  ;; with histogram.
  (func (export "hammingGather") (param $codes i32) (param $idx i32) (param $m i32)
        (param $words i32) (param $q i32) (param $out i32) (param $hist i32)
    (local $j i32) (local $p i32) (local $qp i32) (local $qe i32) (local $acc i64)
    (local $h i32)
    (local.set $qe (i32.add (local.get $q) (i32.shl (local.get $words) (i32.const 3))))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $j) (local.get $m)))
        (local.set $p (i32.add (local.get $codes)
          (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $j) (i32.const 2))))
                   (i32.shl (local.get $words) (i32.const 3)))))
        (local.set $acc (i64.const 0))
        (local.set $qp (local.get $q))
        (loop $inner
          (local.set $acc (i64.add (local.get $acc)
            (i64.popcnt (i64.xor (i64.load (local.get $p)) (i64.load (local.get $qp))))))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (local.set $qp (i32.add (local.get $qp) (i32.const 8)))
          (br_if $inner (i32.lt_u (local.get $qp) (local.get $qe))))
        (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 1)))
          (i32.wrap_i64 (local.get $acc)))
        (local.set $h (i32.add (local.get $hist)
          (i32.shl (i32.wrap_i64 (local.get $acc)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $rows))))
)
