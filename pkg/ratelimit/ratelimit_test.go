package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBucketsAreIndependentAndRefill(t *testing.T) {
	l := New(10, 5)
	now := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow("noisy", now); !ok {
			t.Fatalf("call %d within the burst refused", i)
		}
	}
	ok, wait := l.Allow("noisy", now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("6th call: ok=%v wait=%v, want refused with 100ms", ok, wait)
	}
	if ok, _ := l.Allow("quiet", now); !ok {
		t.Fatal("another key was throttled by the noisy one")
	}
	if ok, _ := l.Allow("noisy", now.Add(100*time.Millisecond)); !ok {
		t.Fatal("a token should have refilled after 100ms")
	}
	if ok, _ := l.Allow("noisy", now.Add(100*time.Millisecond)); ok {
		t.Fatal("only one token refills in 100ms")
	}
	if ok, _ := New(0, 0).Allow("x", now); !ok {
		t.Fatal("rate 0 must allow everything")
	}
}

func TestIdleBucketsAreDropped(t *testing.T) {
	l := New(100, 10)
	now := time.Unix(0, 0)
	for i := 0; i < 100_000; i++ {
		l.Allow(fmt.Sprint("p", i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.Len(); n > 20_000 {
		t.Fatalf("%d buckets held for 100k one-off callers; idle ones should be swept", n)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(1e9, 1e9)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(fmt.Sprint("k", i%64), time.Now())
			i++
		}
	})
}
