# Sourced by the CI scripts that need the Lambda runtime's own Python (sam build, e2e).
# find_python312: prints a python$TARGET_PYTHON executable (pyenv's first, then PATH), or nothing.
find_python312() {
	local dir
	if command -v pyenv >/dev/null 2>&1; then
		for dir in "$(pyenv root)"/versions/"$TARGET_PYTHON".*/bin; do
			[[ -x $dir/python$TARGET_PYTHON ]] && {
				echo "$dir/python$TARGET_PYTHON"
				return
			}
		done
	fi
	command -v "python$TARGET_PYTHON" 2>/dev/null || true
}
