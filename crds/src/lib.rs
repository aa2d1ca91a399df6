//! The tipoff API: custom resource types shared by every tipoff binary.
