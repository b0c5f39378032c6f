# Shared by the bench/ scripts (sourced, never run): summaries of timings read from stdin,
# one number per line.

# "MIN MEDIAN" of the numbers.
min_and_median() {
  sort -n | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; print a[1], m}'
}

# The median of the numbers.
median_of() { min_and_median | awk '{print $2}'; }
